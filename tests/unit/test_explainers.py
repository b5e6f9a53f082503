"""SHAP attributions: exactness, additivity, summing encoded columns back, seeding."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import shap

from expound.errors import AttributionError
from expound.explainers.algorithms import LinearExplainer, TreeExplainer, build_explainer
from expound.explainers.base import attribute
from expound.models.explainer import RawAttribution
from expound.models.registry import ModelRegistry
from tests.conftest import GBM, LOGISTIC


def _background_rows(registry: ModelRegistry, model_id: str) -> list[dict[str, Any]]:
    model = registry.get(model_id)
    rows: list[dict[str, Any]] = json.loads(
        (model.directory / model.manifest.background).read_text()
    )
    return rows


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_additivity_holds_on_every_background_row(registry: ModelRegistry, model_id: str) -> None:
    model = registry.get(model_id)
    explainer = build_explainer(model)
    for row in _background_rows(registry, model_id)[:40]:
        attributions = attribute(model, explainer, row, tolerance=1e-9)
        total = attributions.base_value + sum(i.contribution for i in attributions.items)
        assert total == pytest.approx(attributions.model_output, abs=1e-9)
        assert abs(attributions.additivity_residual) <= 1e-9
        assert [i.rank for i in attributions.items] == list(
            range(1, len(model.manifest.features) + 1)
        )
        magnitudes = [abs(i.contribution) for i in attributions.items]
        assert magnitudes == sorted(magnitudes, reverse=True)


def test_tree_explainer_matches_shap_tree_explainer(registry: ModelRegistry) -> None:
    model = registry.get(GBM)
    ours = build_explainer(model)
    assert isinstance(ours, TreeExplainer)
    reference = shap.TreeExplainer(model.scorer.booster)  # type: ignore[attr-defined]
    for row in _background_rows(registry, GBM)[:10]:
        encoded = model.encode(row)
        expected = np.asarray(reference(encoded).values).reshape(-1)
        assert np.allclose(ours.explain_row(encoded).contributions, expected, atol=1e-9)


def test_linear_explainer_sums_one_hot_columns_back(registry: ModelRegistry) -> None:
    model = registry.get(LOGISTIC)
    explainer = build_explainer(model)
    assert isinstance(explainer, LinearExplainer)
    pipeline = model.scorer.pipeline  # type: ignore[attr-defined]
    encode, classifier = pipeline[:-1], pipeline[-1]
    z_background = encode.transform(model.background)
    row = _background_rows(registry, LOGISTIC)[3]
    z = encode.transform(model.encode(row))[0]
    per_column = classifier.coef_[0] * (z - z_background.mean(axis=0))
    # checking_account is one-hot over 4 categories: its contribution is their sum.
    onehot_width = len(model.manifest.feature("checking_account").categories or [])
    result = explainer.explain_row(model.encode(row))
    assert result.contributions[0] == pytest.approx(per_column[:onehot_width].sum(), abs=1e-9)
    assert len(result.contributions) == len(model.manifest.features)


@pytest.mark.slow
def test_sampling_explainer_is_seeded_and_agrees_with_exact_linear_shap(
    registry: ModelRegistry,
) -> None:
    model = registry.get(LOGISTIC)
    exact = build_explainer(model)
    sampled = build_explainer(model, "sampling")
    row = model.encode(_background_rows(registry, LOGISTIC)[5])
    first, second = sampled.explain_row(row), sampled.explain_row(row)
    assert np.array_equal(first.contributions, second.contributions)
    # For a model linear in its (one-hot) inputs with independent features, permutation
    # SHAP is exact up to float error.
    assert np.allclose(first.contributions, exact.explain_row(row).contributions, atol=1e-6)
    assert sampled.sampling_seed == model.manifest.sampling_seed


def test_tree_explainer_refuses_a_linear_model(registry: ModelRegistry) -> None:
    from expound.errors import ModelIntegrityError

    with pytest.raises(ModelIntegrityError, match="does not apply"):
        build_explainer(registry.get(LOGISTIC), "tree")


class _SkewedExplainer:
    """Drops a constant from the base value, as a buggy explainer might."""

    algorithm = "skewed"
    library_version = "test"
    background_sha256 = ""
    sampling_seed = 0

    def __init__(self, inner: Any, skew: float) -> None:
        self._inner = inner
        self._skew = skew

    def explain_row(self, row: Any) -> RawAttribution:
        raw = self._inner.explain_row(row)
        return RawAttribution(raw.contributions, raw.base_value + self._skew)


def test_additivity_violation_is_an_error(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    model = registry.get(GBM)
    skewed = _SkewedExplainer(build_explainer(model), 1e-3)
    with pytest.raises(AttributionError, match="additivity violated"):
        attribute(model, skewed, denied_applicant, tolerance=1e-6)
    # Within tolerance it passes and the residual is recorded, not hidden.
    small = _SkewedExplainer(build_explainer(model), 1e-8)
    attributions = attribute(model, small, denied_applicant, tolerance=1e-6)
    assert attributions.additivity_residual == pytest.approx(1e-8, rel=1e-3)


def test_explainer_failure_is_translated(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    class Broken(_SkewedExplainer):
        def explain_row(self, row: Any) -> RawAttribution:
            raise FloatingPointError("boom")

    with pytest.raises(AttributionError, match="FloatingPointError"):
        attribute(registry.get(GBM), Broken(None, 0.0), denied_applicant, tolerance=1e-6)
