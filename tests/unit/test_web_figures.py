"""The pages' figure geometry (expound/web/figures.py): labels and where bars lie."""

from __future__ import annotations

import pytest

from expound.domain import Attributions, FeatureAttribution
from expound.web.figures import waterfall


def attributions(values: list[tuple[str, object, float]]) -> Attributions:
    return Attributions(
        items=[
            FeatureAttribution(
                feature=name, description=name, value=value, contribution=c, rank=n + 1
            )
            for n, (name, value, c) in enumerate(values)
        ],
        base_value=-1.0,
        model_output=-1.0 + sum(c for _, _, c in values),
        units="log-odds",
        algorithm="exact",
        library_version="test",
        background_sha256="0" * 64,
        sampling_seed=0,
        additivity_residual=0.0,
    )


@pytest.mark.parametrize(
    ("value", "label"),
    [(48.0, "term = 48"), (0.25, "term = 0.25"), (12, "term = 12"), ("rent", "term = rent")],
)
def test_a_label_shows_the_value_as_given_without_a_trailing_zero(
    value: object, label: str
) -> None:
    # Numbers arrive as floats: 48.0 was shown where the request said 48.
    assert waterfall(attributions([("term", value, 0.5)]))[0].label == label


def test_the_bars_run_from_the_base_value_to_the_output_with_the_rest_summed() -> None:
    values = [(f"f{n}", n, 0.4 - 0.1 * n) for n in range(6)]
    bars = waterfall(attributions(values), bars=3)
    assert [bar.label for bar in bars] == ["f0 = 0", "f1 = 1", "f2 = 2", "3 other features"]
    assert bars[-1].value == pytest.approx(sum(c for _, _, c in values[3:]))
    assert [bar.increases for bar in bars] == [True, True, True, False]
    # The first bar starts at the base value, the lowest point of this path.
    assert bars[0].start == pytest.approx(0.0)
