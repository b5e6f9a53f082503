"""Model directories: hashes checked at load, manifests validated, demo manifests complete."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from expound.errors import ModelIntegrityError
from expound.explainers.algorithms import build_explainer
from expound.models.manifest import ModelManifest
from expound.models.registry import ModelRegistry, load_model
from expound.models.training import GBM_ID, LOGISTIC_ID


@pytest.fixture
def model_copy(models_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the demo models, free to corrupt; returns the tree model's folder."""
    shutil.copytree(models_dir, tmp_path / "models")
    return tmp_path / "models" / GBM_ID


def manifest_json(directory: Path) -> dict[str, Any]:
    return dict(json.loads((directory / "manifest.json").read_text()))


def test_an_intact_copy_loads(model_copy: Path) -> None:
    assert load_model(model_copy).manifest.model_id == GBM_ID


def test_a_changed_artifact_is_refused(model_copy: Path) -> None:
    artifact = model_copy / "model.lgb.txt"
    # One changed leaf value: still a valid model file, but not the one the manifest hashed.
    text = artifact.read_text()
    position = text.index("leaf_value=") + len("leaf_value=")
    artifact.write_text(text[:position] + "9" + text[position:])
    with pytest.raises(ModelIntegrityError, match=r"artifact .*model\.lgb\.txt has sha256"):
        load_model(model_copy)
    # The registry still starts: that one model is unavailable, saying why.
    registry = ModelRegistry.from_directory(model_copy.parent, build_explainer)
    [unavailable] = registry.unavailable()
    assert unavailable.model_id == GBM_ID
    assert re.search(rf"{model_copy}: artifact .*model\.lgb\.txt has sha256", unavailable.reason)
    assert [m.manifest.model_id for m in registry.all()] == [LOGISTIC_ID]


def test_a_changed_background_is_refused(model_copy: Path) -> None:
    background = model_copy / "background.json"
    rows = json.loads(background.read_text())
    rows[0]["credit_amount"] = rows[0]["credit_amount"] + 1
    background.write_text(json.dumps(rows))
    with pytest.raises(ModelIntegrityError, match=r"background .*background\.json has sha256"):
        load_model(model_copy)


def test_a_missing_artifact_is_refused(model_copy: Path) -> None:
    (model_copy / "model.lgb.txt").unlink()
    with pytest.raises(ModelIntegrityError, match=r"cannot read artifact .*model\.lgb\.txt"):
        load_model(model_copy)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"decision": {"threshold": 1.5}}, "threshold"),
        ({"artifact_sha256": "not-a-hash"}, "artifact_sha256"),
        ({"kind": "pickle"}, "kind"),
        ({"surprise": True}, "surprise"),
    ],
    ids=["threshold", "hash", "kind", "extra-field"],
)
def test_a_manifest_that_fails_validation_is_refused(
    model_copy: Path, change: dict[str, Any], complaint: str
) -> None:
    manifest = manifest_json(model_copy) | change
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match=rf"invalid manifest(?s:.*){complaint}"):
        load_model(model_copy)


def test_a_manifest_that_is_not_json_is_refused(model_copy: Path) -> None:
    (model_copy / "manifest.json").write_text("{")
    with pytest.raises(ModelIntegrityError, match="invalid manifest"):
        load_model(model_copy)


def test_an_empty_model_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="no models"):
        ModelRegistry.from_directory(tmp_path, build_explainer)


def test_reasons_naming_unknown_features_are_refused(models_dir: Path) -> None:
    manifest = manifest_json(models_dir / GBM_ID)
    manifest["reasons"][0]["features"].append("shoe_size")
    with pytest.raises(ValidationError, match=r"names unknown features \['shoe_size'\]"):
        ModelManifest.model_validate(manifest)


def test_a_feature_in_two_reasons_is_refused(models_dir: Path) -> None:
    manifest = manifest_json(models_dir / GBM_ID)
    manifest["reasons"][1]["features"].append(manifest["reasons"][0]["features"][0])
    with pytest.raises(ValidationError, match="repeats a feature"):
        ModelManifest.model_validate(manifest)


def test_an_unprotected_feature_without_a_reason_is_refused(models_dir: Path) -> None:
    manifest = manifest_json(models_dir / GBM_ID)
    dropped = manifest["reasons"].pop(0)
    with pytest.raises(
        ValidationError, match=rf"without a reason code: \['{dropped['features'][0]}"
    ):
        ModelManifest.model_validate(manifest)


@pytest.mark.parametrize("model_id", [GBM_ID, LOGISTIC_ID])
def test_demo_manifests_are_complete(models_dir: Path, model_id: str) -> None:
    manifest = ModelManifest.model_validate_json(
        (models_dir / model_id / "manifest.json").read_text()
    )
    assert manifest.features and manifest.reasons
    for spec in manifest.features:
        # A loan officer reads these: words, not the column name.
        assert len(spec.description.split()) >= 2, spec.name
        assert spec.description != spec.name.replace("_", " "), spec.name
        assert spec.type in {"number", "integer", "category", "bool"}
        if spec.type in {"number", "integer"}:
            assert spec.minimum is not None and spec.maximum is not None, spec.name
            assert spec.minimum < spec.maximum, spec.name
        if spec.type == "category":
            assert spec.categories and len(set(spec.categories)) == len(spec.categories)
            assert set(spec.category_descriptions) <= set(spec.categories), spec.name
    coded = {name for reason in manifest.reasons for name in reason.features}
    protected = {spec.name for spec in manifest.features if spec.protected}
    assert protected, "the demo data has protected attributes; the manifest must flag them"
    assert coded == {spec.name for spec in manifest.features} - protected
    for reason in manifest.reasons:
        assert "policy" not in reason.text.lower(), reason.code
    assert len({reason.code for reason in manifest.reasons}) == len(manifest.reasons)
    assert manifest.score_meaning and manifest.units and 0 < manifest.decision.threshold < 1
