"""`expound models check`: good and bad directories, a sample scored, additivity per row."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from expound.clients.cli import main
from expound.explainers.algorithms import build_explainer
from expound.explainers.checking import check_model_directory
from expound.explainers.decision import decide
from expound.models.explainer import Explainer, FloatMatrix, RawAttribution
from expound.models.registry import LoadedModel, ModelRegistry
from expound.models.training import GBM_ID
from tests.support.model_dirs import BROKEN_REASONS, WrappedExplainer, mixed_models

TARGET = "defaulted"


def write_sample(models_dir: Path, path: Path, rows: int = 60) -> list[dict[str, Any]]:
    """Background rows of the tree model as a CSV sample, the first ten marked defaulted."""
    features = json.loads((models_dir / GBM_ID / "background.json").read_text())[:rows]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [*features[0], TARGET])
        writer.writeheader()
        for index, row in enumerate(features):
            cells = {
                k: "" if v is None else str(v).lower() if isinstance(v, bool) else v
                for k, v in row.items()
            }
            writer.writerow(cells | {TARGET: "yes" if index < 10 else "no"})
    return list(features)


def test_a_good_directory_with_its_sample_passes(
    models_dir: Path, registry: ModelRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = write_sample(models_dir, tmp_path / "sample.csv")
    code = main(
        [
            "models",
            "check",
            str(models_dir / GBM_ID),
            "--data",
            str(tmp_path / "sample.csv"),
            "--target",
            TARGET,
            "--adverse-value",
            "yes",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    model = registry.get(GBM_ID)
    adverse = [decide(model, row, 1e-6).prediction.adverse for row in rows]
    agreed = sum(a == (i < 10) for i, a in enumerate(adverse))
    assert out.startswith(f"model directory {models_dir / GBM_ID}: OK\n")
    assert f"ok    loads as the server loads it: {GBM_ID} " in out
    assert re.search(
        rf"sample: 60 of 60 row\(s\) explained, additivity holds on each \(largest residual "
        rf"[0-9.e-]+, tolerance 1e-06\); {sum(adverse)} decline, {60 - sum(adverse)} approve",
        out,
    )
    assert f"decision agreement with {TARGET} == 'yes' as adverse: {agreed}/60" in out


@pytest.mark.parametrize("name", sorted(BROKEN_REASONS))
def test_a_bad_directory_fails_with_its_reason(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    directory = mixed_models(models_dir, tmp_path / "models")[name]
    assert main(["models", "check", str(directory)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"model directory {directory}: FAILED\n")
    assert re.search(
        rf"  FAIL  model directory {re.escape(str(directory))}: "
        rf"{BROKEN_REASONS[name]}",
        out,
    ), out
    if name == "todo-left":
        todos = re.findall(r"^  TODO  (\S+)$", out, flags=re.MULTILINE)
        assert [re.sub(r"\[\w+\]", "[]", t) for t in todos] == [
            "features[].description",
            "features[].protected",
            "reasons[].text",
        ]


def three_rows_one_changed(models_dir: Path, tmp_path: Path, column: str, value: str) -> Path:
    """A three-row request-form sample whose second row (line 3) has ``column`` = ``value``."""
    sample = tmp_path / "sample.csv"
    write_sample(models_dir, sample, rows=3)
    lines = sample.read_text().splitlines()
    header = lines[0].split(",")
    cells = next(csv.reader([lines[2]]))
    cells[header.index(column)] = value
    with sample.open("w", newline="") as handle:
        csv.writer(handle).writerows(
            [header, next(csv.reader([lines[1]])), cells, next(csv.reader([lines[3]]))]
        )
    return sample


def test_invalid_sample_values_are_named_by_line_and_field(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = three_rows_one_changed(models_dir, tmp_path, "credit_amount", "-5")
    assert main(["models", "check", str(models_dir / GBM_ID), "--data", str(sample)]) == 1
    out = capsys.readouterr().out
    assert "  FAIL  line 3: features[credit_amount]: must be at least" in out
    assert "sample: 2 of 3 row(s) explained" in out


class _OffByOne(WrappedExplainer):
    """An explainer whose base value is one unit off: additivity fails on every row."""

    def explain_row(self, row: FloatMatrix) -> RawAttribution:
        raw = self._inner.explain_row(row)
        return replace(raw, base_value=raw.base_value + 1.0)


def test_additivity_is_checked_on_every_sample_row(models_dir: Path, tmp_path: Path) -> None:
    write_sample(models_dir, tmp_path / "sample.csv", rows=25)

    def factory(model: LoadedModel) -> Explainer:
        return _OffByOne(build_explainer(model))

    report = check_model_directory(models_dir / GBM_ID, factory, sample=tmp_path / "sample.csv")
    assert not report.ok
    assert len(report.failures) == 21  # twenty listed, then the count of the rest
    assert re.match(
        r"line 2: additivity violated: base \+ contributions - output = 1 ", report.failures[0]
    )
    assert report.failures[-1] == "... and 5 more rows not explained"


def test_a_wrong_category_id_in_a_request_form_sample_fails_its_line_only(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A sample may also be the model's input form (the import's own sample); a request-form
    # sample with one wrong category id must still be read as requests, not as that form.
    sample = three_rows_one_changed(models_dir, tmp_path, "savings", "a_fortune")
    assert main(["models", "check", str(models_dir / GBM_ID), "--data", str(sample)]) == 1
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("  FAIL")] == [
        "  FAIL  line 3: features[savings]: unknown category; allowed: ['below_100_dm', "
        "'100_to_500_dm', '500_to_1000_dm', '1000_dm_or_more', 'none_or_unknown']"
    ]
    assert "sample: 2 of 3 row(s) explained" in out
