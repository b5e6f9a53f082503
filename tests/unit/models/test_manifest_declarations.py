"""The manifest's declarations: decision rule either side, category codes, one-hot groups,
column order, and how rows are encoded from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from expound.explainers.algorithms import build_explainer
from expound.models.encoding import column_owners, encode_rows, encode_value
from expound.models.manifest import DecisionRule, FeatureSpec, ModelManifest
from expound.models.registry import load_model


def test_the_decision_rule_either_side_of_the_threshold() -> None:
    above = DecisionRule(threshold=0.4)
    below = DecisionRule(threshold=0.4, adverse_when="score_below")
    assert above.is_adverse(0.4) and not above.is_adverse(0.39)
    assert below.is_adverse(0.39) and not below.is_adverse(0.4)
    assert (above.adverse_sign, below.adverse_sign) == (1.0, -1.0)
    assert below.describe() == "score < 0.4: decline"
    scores = np.array([0.0, 0.39, 0.4, 0.41, 1.0])
    for rule in (above, below):
        assert rule.adverse_each(scores).tolist() == [rule.is_adverse(s) for s in scores]


def _category(**extra: object) -> FeatureSpec:
    return FeatureSpec(
        name="tier",
        type="category",
        description="service tier",
        categories=["basic", "plus", "gold"],
        **extra,  # type: ignore[arg-type]
    )


def test_category_codes_are_the_models_values_and_one_hot_groups_its_columns() -> None:
    coded = _category(codes=[1, 2, 3])
    onehot = _category(onehot_columns=["tier_basic", None, "tier_gold"])
    text = _category(codes=["B", "P", "G"])
    number = FeatureSpec(name="amount", type="number", description="amount", column="Amount")
    rows = [{"tier": "plus", "amount": 5.0}, {"tier": "gold", "amount": None}]
    assert encode_rows([coded, number], rows).tolist() == [
        [2.0, 5.0],
        [3.0, pytest.approx(np.nan, nan_ok=True)],
    ]
    columns = ["Amount", "tier_gold", "tier_basic"]
    encoded = encode_rows([onehot, number], rows, columns)
    assert encoded[0].tolist() == [5.0, 0.0, 0.0]  # "plus" is the reference: no column set
    assert encoded[1, 1:].tolist() == [1.0, 0.0]
    assert column_owners([onehot, number], columns).tolist() == [1, 0, 0]
    assert encode_rows([text], rows[:1]).tolist() == [["P"]]


def test_one_value_encodes_as_its_columns_in_a_row() -> None:
    specs = [
        _category(codes=[1, 2, 3]),
        _category(onehot_columns=["tier_basic", None, "tier_gold"]),
        _category(codes=["B", "P", "G"]),
        _category(),
        FeatureSpec(name="tier", type="bool", description="flag"),
        FeatureSpec(name="tier", type="integer", description="count", nullable=True),
    ]
    values: list[object] = ["basic", "plus", "gold", True, False, 3, 4.0, None]
    for spec in specs:
        for value in values:
            try:
                row = encode_rows([spec], [{"tier": value}])  # type: ignore[dict-item]
            except (ValueError, TypeError):
                continue  # not a value of this feature
            encoded = encode_value(spec, value)  # type: ignore[arg-type]
            assert len(encoded) == row.shape[1]
            for cell, one in zip(row[0].tolist(), encoded, strict=True):
                assert type(cell) is type(one)
                assert cell == one or (cell != cell and one != one)  # NaN for null


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"codes": [1, 2]}, "codes: one entry per category"),
        ({"codes": [1, 1, 2]}, "codes: entries must be unique"),
        ({"codes": [1, 2, 3], "onehot_columns": ["a", "b", "c"]}, "codes or onehot_columns"),
    ],
)
def test_inconsistent_category_declarations_are_refused(
    extra: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _category(**extra)


def test_columns_must_be_exactly_the_features_columns(models_dir: Path) -> None:
    manifest = json.loads((models_dir / "german-credit-gbm" / "manifest.json").read_text())
    names = [f["name"] for f in manifest["features"]]
    ModelManifest.model_validate({**manifest, "columns": list(reversed(names))})
    with pytest.raises(ValidationError, match=r"columns:.*'nonsense'"):
        ModelManifest.model_validate({**manifest, "columns": [*names[:-1], "nonsense"]})


def test_a_booster_must_declare_its_log_odds_of_class_one(models_dir: Path, tmp_path: Path) -> None:
    source = models_dir / "german-credit-gbm"
    for path in source.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["score"] = {"output": 0, "space": "log_odds"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match=f"{tmp_path}: score: a binary LightGBM"):
        load_model(tmp_path)


def test_interventional_treeshap_that_does_not_add_up_is_refused_at_load(
    models_dir: Path, tmp_path: Path
) -> None:
    source = models_dir / "german-credit-gbm"
    for path in source.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["tree_shap"] = "interventional"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    # shap's interventional walker cannot read LightGBM's categorical splits.
    with pytest.raises(Exception, match=f"{tmp_path}: .*tree_shap: interventional"):
        build_explainer(load_model(tmp_path))
