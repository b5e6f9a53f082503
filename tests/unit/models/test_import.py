"""`expound models import`, the outside case of issue 9 and the bad cases.

The outside case: a RandomForest (100 trees) on integer-coded categories starting at 1, two
categories as one-hot column groups, predict_proba giving the probability of GOOD credit,
pickled; imported with --trust-pickle, its TODOs filled in, loaded and explained.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shap

from expound.clients.cli import main
from expound.errors import ModelIntegrityError
from expound.explainers.algorithms import build_explainer
from expound.explainers.base import attribute
from expound.explainers.reasons import predict, principal_reasons
from expound.models.demo_schema import FEATURES
from expound.models.importing import feature_value
from expound.models.manifest import ModelManifest
from expound.models.registry import load_model
from expound.models.todos import todo_fields
from tests.unit.models.conftest import import_outside


def test_the_import_infers_codes_one_hot_groups_and_the_output_space(imported: Path) -> None:
    manifest = ModelManifest.model_validate_json((imported / "manifest.json").read_text())
    assert manifest.kind == "sklearn" and manifest.explainer == "tree"
    assert (manifest.score.space, manifest.score.output) == ("probability", 1)
    assert "sklearn.tree._tree.Tree" in manifest.trusted_types
    assert not list(imported.glob("*.pkl"))  # converted: only the safe artifact is written
    checking = manifest.feature("checking_account")
    assert checking.type == "category" and checking.codes == [1, 2, 3, 4]  # no dummy 0
    purpose = manifest.feature("purpose")
    assert purpose.type == "category" and purpose.onehot_columns is not None
    assert len(purpose.onehot_columns) == 10 and "new_car" in (purpose.categories or [])
    assert manifest.feature("housing").categories == ["rent", "own", "free"]
    assert len(manifest.features) == len(FEATURES)
    background = json.loads((imported / "background.json").read_text())
    assert len(background) == 100 and background[0]["purpose"] in purpose.categories  # type: ignore[operator]


def test_what_cannot_be_inferred_is_marked_todo(imported: Path) -> None:
    document = json.loads((imported / "manifest.json").read_text())
    todos = todo_fields(document)
    first_feature = document["features"][0]["name"]
    assert "title" in todos
    assert f"features[{first_feature}].description" in todos
    assert any(path.startswith("reasons[") and path.endswith("].text") for path in todos)
    # The reason's third-person form for compliance and analyst texts is reviewed too.
    assert any(path.startswith("reasons[") and path.endswith("].neutral_text") for path in todos)
    assert "score_meaning" not in todos  # filled in by the fixture


def test_an_imported_directory_is_refused_until_every_todo_is_written(imported: Path) -> None:
    with pytest.raises(ModelIntegrityError) as refused:
        load_model(imported)
    assert str(imported) in refused.value.message
    assert "TODO" in refused.value.message and "features[checking_account].description" in (
        refused.value.message
    )


def test_the_outside_forest_is_loaded_and_explained_as_declared(
    outside: dict[str, Any], reviewed_dir: Path
) -> None:
    loaded = load_model(reviewed_dir)
    explainer = build_explainer(loaded)
    forest, data = outside["forest"], outside["data"]
    direct = shap.TreeExplainer(forest)
    p_good = forest.predict_proba(data.head(40))[:, 1]
    adverse_seen = 0
    for i, record in enumerate(data.head(40).to_dict(orient="records")):
        features = {s.name: feature_value(s, record) for s in loaded.manifest.features}
        row = loaded.encode(features)
        expected = np.asarray(direct.shap_values(data.iloc[[i]]))[0, :, 1]
        np.testing.assert_allclose(explainer.explain_row(row).contributions, expected, atol=1e-6)
        attributions = attribute(loaded, explainer, features, tolerance=1e-6)
        # One value, one summed attribution for a one-hot group.
        item = next(a for a in attributions.items if a.feature == "purpose")
        columns = [j for j, c in enumerate(data.columns) if c.startswith("purpose_")]
        assert item.contribution == pytest.approx(float(expected[columns].sum()), abs=1e-9)
        assert isinstance(item.value, str) and data.iloc[i][f"purpose_{item.value}"] == 1
        prediction = predict(loaded.manifest, attributions.model_output)
        assert prediction.score == pytest.approx(p_good[i], abs=1e-9)
        assert prediction.adverse is bool(p_good[i] < 0.5)
        reasons = principal_reasons(loaded.manifest, attributions, prediction)
        if prediction.adverse:
            adverse_seen += 1
            # Adverse here means a LOWER probability of good credit.
            assert reasons and all(r.contribution < 0 for r in reasons)
        else:
            assert reasons == []
    assert adverse_seen > 0


def _copy(imported: Path, tmp_path: Path, edit: Any) -> Path:
    target = tmp_path / "edited"
    target.mkdir()
    for path in imported.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    manifest = json.loads((target / "manifest.json").read_text())
    edit(manifest)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def test_swapped_columns_are_refused_naming_directory_and_field(
    reviewed_dir: Path, tmp_path: Path
) -> None:
    def swap(manifest: dict[str, Any]) -> None:
        columns = manifest["columns"]
        columns[0], columns[1] = columns[1], columns[0]

    directory = _copy(reviewed_dir, tmp_path, swap)
    with pytest.raises(ModelIntegrityError, match=re.escape(str(directory)) + r".*columns"):
        load_model(directory)


def test_an_untrusted_type_is_refused_naming_directory_and_field(
    reviewed_dir: Path, tmp_path: Path
) -> None:
    directory = _copy(reviewed_dir, tmp_path, lambda m: m.update(trusted_types=[]))
    with pytest.raises(
        ModelIntegrityError, match=re.escape(str(directory)) + r": trusted_types: .*_tree.Tree"
    ):
        load_model(directory)


def test_a_probability_model_declared_as_log_odds_is_refused(
    reviewed_dir: Path, tmp_path: Path
) -> None:
    directory = _copy(reviewed_dir, tmp_path, lambda m: m["score"].update(space="log_odds"))
    with pytest.raises(ModelIntegrityError, match=r"score.space: RandomForestClassifier"):
        load_model(directory)


def test_a_pickle_is_read_only_with_the_trust_flag(
    outside: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert import_outside(outside, tmp_path / "untrusted") == 2
    assert "--trust-pickle" in capsys.readouterr().err


def test_a_model_without_predict_proba_is_refused(
    outside: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.svm import LinearSVC

    model = LinearSVC().fit(outside["data"].head(200), np.arange(200) % 2)
    (outside["root"] / "svc.pkl").write_bytes(pickle.dumps(model))
    code = main(
        [
            "models",
            "import",
            str(outside["root"] / "svc.pkl"),
            "--data",
            str(outside["sample"]),
            "--target",
            "target",
            "--out",
            str(tmp_path / "svc"),
            "--trust-pickle",
        ]
    )
    error = capsys.readouterr().err
    assert code == 2 and "svc.pkl: predict_proba: LinearSVC" in error


def test_a_refused_import_leaves_nothing_behind(
    outside: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A sample without one of the model's columns: refused after the artifact was
    # converted, which used to leave a directory holding only model.skops.
    narrow = tmp_path / "narrow.csv"
    outside["data"].drop(columns=[outside["data"].columns[0]]).assign(target=1).to_csv(
        narrow, index=False
    )
    models = tmp_path / "models"
    code = main(
        [
            "models",
            "import",
            str(outside["root"] / "forest.pkl"),
            "--data",
            str(narrow),
            "--target",
            "target",
            "--out",
            str(models / "forest"),
            "--trust-pickle",
        ]
    )
    error = capsys.readouterr().err
    assert code == 2 and "not in the sample" in error and "its encoding" in error
    assert list(models.iterdir()) == []  # neither the directory nor its hidden draft


def test_an_import_never_overwrites_a_directory_in_review(
    outside: dict[str, Any], imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {path.name: path.read_bytes() for path in imported.iterdir()}
    assert import_outside(outside, imported, "--trust-pickle") == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in imported.iterdir()} == before
    # An empty directory made for it beforehand is fine, and readable by others.
    empty = tmp_path / "made-for-it"
    empty.mkdir()
    assert import_outside(outside, empty, "--trust-pickle") == 0
    assert (empty / "manifest.json").is_file() and empty.stat().st_mode & 0o755 == 0o755
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
