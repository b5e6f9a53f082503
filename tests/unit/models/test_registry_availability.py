"""The registry survives bad model directories, warms explainers, and reloads in place."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from expound.errors import ModelIntegrityError, ModelNotFound
from expound.explainers.algorithms import build_explainer
from expound.models.explainer import Explainer, FloatMatrix, RawAttribution
from expound.models.registry import LoadedModel, ModelRegistry
from expound.models.todos import todo_fields
from expound.models.training import GBM_ID, LOGISTIC_ID
from tests.support.model_dirs import (
    BROKEN_REASONS,
    WrappedExplainer,
    copy_model,
    mixed_models,
    read_manifest,
    retrained_artifact,
    write_manifest,
)


def test_bad_directories_are_unavailable_and_the_good_ones_served(
    models_dir: Path, tmp_path: Path
) -> None:
    directories = mixed_models(models_dir, tmp_path / "models")
    registry = ModelRegistry.from_directory(tmp_path / "models", build_explainer)

    assert [m.manifest.model_id for m in registry.all()] == [GBM_ID, LOGISTIC_ID]
    reasons = {u.model_id: u.reason for u in registry.unavailable()}
    assert sorted(reasons) == sorted(BROKEN_REASONS)
    for name, pattern in BROKEN_REASONS.items():
        expected = rf"^model directory {re.escape(str(directories[name]))}: {pattern}"
        assert re.search(expected, reasons[name]), reasons[name]


def test_an_unavailable_model_says_why_and_an_unknown_one_is_not_found(
    models_dir: Path, tmp_path: Path
) -> None:
    mixed_models(models_dir, tmp_path / "models")
    registry = ModelRegistry.from_directory(tmp_path / "models", build_explainer)
    with pytest.raises(ModelIntegrityError, match=r"model todo-left is unavailable: .*TODO"):
        registry.get("todo-left")
    with pytest.raises(ModelNotFound, match="unknown model 'nope'"):
        registry.get("nope")


def test_a_manifest_field_error_names_the_directory_and_the_field(
    models_dir: Path, tmp_path: Path
) -> None:
    def bad_threshold(manifest: dict[str, object]) -> None:
        manifest["decision"] = {"threshold": 1.5}

    directory = copy_model(models_dir, tmp_path, "bad-threshold", change=bad_threshold)
    registry = ModelRegistry.from_directory(tmp_path, build_explainer)
    [unavailable] = registry.unavailable()
    assert unavailable.reason.startswith(f"model directory {directory}: invalid manifest: ")
    assert "decision.threshold: Input should be less than 1" in unavailable.reason


def test_two_directories_with_one_model_id_serve_the_first(
    models_dir: Path, tmp_path: Path
) -> None:
    shutil.copytree(models_dir / GBM_ID, tmp_path / "a")
    shutil.copytree(models_dir / GBM_ID, tmp_path / "b")
    registry = ModelRegistry.from_directory(tmp_path, build_explainer)
    assert registry.get(GBM_ID).directory == tmp_path / "a"
    [unavailable] = registry.unavailable()
    assert unavailable.reason == (
        f"model directory {tmp_path / 'b'}: model id {GBM_ID} is already served from "
        f"{tmp_path / 'a'}"
    )


def test_todo_fields_are_found_anywhere_and_only_at_the_start() -> None:
    manifest = {
        "title": "TODO",
        "features": [{"name": "age", "description": "TODO: words"}, {"name": "TODO"}],
        "reasons": [{"code": "R1", "text": "see TODO list"}],
        "training": {"notes": "TODOs"},
    }
    assert todo_fields(manifest) == [
        "title",
        "features[age].description",
        "features[1].name",
        "training.notes",
    ]


class _CountingExplainer(WrappedExplainer):
    """Wraps a real explainer and counts the rows it explains."""

    def __init__(self, inner: Explainer) -> None:
        super().__init__(inner)
        self.rows = 0

    def explain_row(self, row: FloatMatrix) -> RawAttribution:
        self.rows += 1
        return self._inner.explain_row(row)


def test_every_explainer_is_warmed_at_load(models_dir: Path) -> None:
    registry = ModelRegistry.from_directory(
        models_dir, lambda model: _CountingExplainer(build_explainer(model))
    )
    for model in registry.all():
        assert isinstance(model.explainer, _CountingExplainer)
        assert model.explainer.rows == 1


def test_an_explainer_that_fails_at_warm_up_makes_its_model_unavailable(
    models_dir: Path,
) -> None:
    class Broken(_CountingExplainer):
        def explain_row(self, row: FloatMatrix) -> RawAttribution:
            raise AttributeError("'RandomForestClassifier' has no attribute 'decision_function'")

    def factory(model: LoadedModel) -> Explainer:
        inner = build_explainer(model)
        return Broken(inner) if model.manifest.model_id == LOGISTIC_ID else inner

    registry = ModelRegistry.from_directory(models_dir, factory)
    [unavailable] = registry.unavailable()
    assert unavailable.reason == (
        f"model directory {models_dir / LOGISTIC_ID}: explainer linear-shap-interventional "
        "fails on the first background row: AttributeError: 'RandomForestClassifier' has no "
        "attribute 'decision_function'"
    )
    assert [m.manifest.model_id for m in registry.all()] == [GBM_ID]


def test_an_explainer_that_cannot_be_built_names_the_directory_once(models_dir: Path) -> None:
    # The reason read "model directory D: model directory D: explainer: 'tree' does not
    # apply ..." (build_explainer names the directory, and serve_model named it again).
    def factory(model: LoadedModel) -> Explainer:
        if model.manifest.model_id == LOGISTIC_ID:
            raise ModelIntegrityError(
                f"model directory {model.directory}: explainer: 'tree' does not apply"
            )
        return build_explainer(model)

    registry = ModelRegistry.from_directory(models_dir, factory)
    [unavailable] = registry.unavailable()
    assert unavailable.reason == (
        f"model directory {models_dir / LOGISTIC_ID}: explainer: 'tree' does not apply"
    )


def test_reload_adds_changes_and_removes_and_keeps_what_did_not_change(
    models_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    shutil.copytree(models_dir, root)
    registry = ModelRegistry.from_directory(root, build_explainer)
    gbm, logistic = registry.get(GBM_ID), registry.get(LOGISTIC_ID)

    copy_model(models_dir, root, "gbm-copy")
    digest = retrained_artifact(root / GBM_ID, "2.0.0")
    shutil.rmtree(root / LOGISTIC_ID)
    report = registry.reload()

    assert (report.added, report.changed, report.removed) == (["gbm-copy"], [GBM_ID], [LOGISTIC_ID])
    assert report.unchanged == [] and report.unavailable == []
    assert registry.get(GBM_ID).manifest.artifact_sha256 == digest
    assert registry.get(GBM_ID).manifest.version == "2.0.0"
    # What a caller took before the reload is untouched: it finishes on that version.
    assert gbm.manifest.version != "2.0.0" and logistic.manifest.model_id == LOGISTIC_ID
    with pytest.raises(ModelNotFound):
        registry.get(LOGISTIC_ID)

    served = registry.get(GBM_ID)
    again = registry.reload()
    assert again.unchanged == ["gbm-copy", GBM_ID] and not (again.added or again.changed)
    assert registry.get(GBM_ID) is served


def test_reload_turns_a_model_unavailable_when_its_directory_breaks(
    models_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    shutil.copytree(models_dir, root)
    registry = ModelRegistry.from_directory(root, build_explainer)
    manifest = read_manifest(root / GBM_ID)
    manifest["reasons"][0]["text"] = "TODO"
    write_manifest(root / GBM_ID, manifest)

    report = registry.reload()
    assert report.removed == [GBM_ID] and report.unchanged == [LOGISTIC_ID]
    assert [u.model_id for u in report.unavailable] == [GBM_ID]
    with pytest.raises(ModelIntegrityError, match=r"reasons\[\w+\]\.text"):
        registry.get(GBM_ID)


def test_a_reload_of_a_vanished_root_keeps_the_models_served(
    models_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    shutil.copytree(models_dir, root)
    registry = ModelRegistry.from_directory(root, build_explainer)
    shutil.rmtree(root)
    with pytest.raises(ModelIntegrityError, match="does not exist"):
        registry.reload()
    assert [m.manifest.model_id for m in registry.all()] == [GBM_ID, LOGISTIC_ID]
