"""Boosters trained the way their docs teach categorical data: pandas ``category`` columns.

XGBoost (3.1 and later) and LightGBM store each categorical feature's category strings in
the model; the trees split on the index in that list. The team imports the booster with a
sample of raw strings, fills its TODOs, serves it and explains an applicant sent with the
category ids: the attributions add up and the score is the library's own prediction on the
DataFrame row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from expound.domain import FeatureScalar
from expound.explainers.base import attribute
from expound.explainers.reasons import predict
from expound.models.importing import ImportRefused, import_model
from expound.models.registry import ServedModel
from expound.models.stored_categories import lightgbm_categories
from tests.unit.models.conftest import ROOT
from tests.unit.models.test_kinds import serve

LABEL = "label"
# Rows whose explanation is checked: a few, enough to meet every category of some columns.
CHECKED_ROWS = 8


@pytest.fixture(scope="module")
def german() -> tuple[pd.DataFrame, pd.Series]:
    """The repo's German credit data as pandas categoricals (every string column), and
    1 for good credit."""
    frame = pd.read_csv(ROOT / "data" / "german_credit.csv")
    good = (frame.pop("creditability") == "good").astype(int)
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype("category")
    return frame, good


def _string_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]


def _write_sample(frame: pd.DataFrame, good: pd.Series, path: Path) -> Path:
    frame.assign(**{LABEL: good}).to_csv(path, index=False)
    return path


def _xgboost(frame: pd.DataFrame, good: pd.Series, path: Path) -> Any:
    import xgboost

    classifier = xgboost.XGBClassifier(
        n_estimators=20, max_depth=4, enable_categorical=True, tree_method="hist", n_jobs=1
    ).fit(frame, good)
    classifier.get_booster().save_model(str(path / "model.json"))
    return classifier


def _lightgbm(frame: pd.DataFrame, good: pd.Series, path: Path) -> Any:
    import lightgbm

    classifier = lightgbm.LGBMClassifier(
        n_estimators=20, num_leaves=8, random_state=1, verbose=-1, n_jobs=1
    ).fit(frame, good)
    classifier.booster_.save_model(str(path / "model.txt"))
    return classifier


TRAINERS: dict[str, tuple[Callable[[pd.DataFrame, pd.Series, Path], Any], str]] = {
    "xgboost": (_xgboost, "model.json"),
    "lightgbm": (_lightgbm, "model.txt"),
}


@pytest.fixture(scope="module", params=sorted(TRAINERS))
def trained(
    request: pytest.FixtureRequest,
    german: tuple[pd.DataFrame, pd.Series],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """One library's classifier on the categoricals, its artifact, and a sample of strings."""
    frame, good = german
    root = tmp_path_factory.mktemp(request.param)
    train, artifact = TRAINERS[request.param]
    classifier = train(frame, good, root)
    sample = _write_sample(frame, good, root / "sample.csv")
    return {"classifier": classifier, "artifact": root / artifact, "sample": sample}


def _serve(directory: Path) -> ServedModel:
    """Serves the import once its owner described each category in words of its feature:
    the data's "none" is a category of three features, which texts must tell apart."""
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    for feature in manifest["features"]:
        feature["category_descriptions"] = {
            category: f"{feature['name'].replace('_', ' ')} {category.replace('_', ' ')}"
            for category in feature.get("categories") or []
        }
    path.write_text(json.dumps(manifest))
    return serve(directory)


def _applicant(model: ServedModel, frame: pd.DataFrame, i: int) -> dict[str, FeatureScalar]:
    """Row ``i`` as a caller sends it: the category's id, found by the category's position in
    pandas' own list (the code the model was trained on), numbers as numbers."""
    features: dict[str, FeatureScalar] = {}
    for spec in model.manifest.features:
        value = frame.iloc[i][spec.columns()[0]]
        if spec.type == "category":
            position = list(frame[spec.columns()[0]].cat.categories).index(value)
            features[spec.name] = (spec.categories or [])[position]
        else:
            features[spec.name] = float(value)
    return features


def test_category_codes_are_the_models_indices_and_ids_its_strings(
    trained: dict[str, Any], german: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    frame, _ = german
    manifest = import_model(trained["artifact"], trained["sample"], tmp_path / "m", target=LABEL)
    checking = manifest.feature("status_of_existing_checking_account")
    strings = list(frame["status_of_existing_checking_account"].cat.categories)
    assert checking.type == "category" and checking.codes == list(range(len(strings)))
    assert "no_checking_account" in (checking.categories or [])
    assert (checking.categories or []).index("no_checking_account") == strings.index(
        "no checking account"
    )
    descriptions = " ".join((checking.category_descriptions or {}).values())
    assert all(repr(s) in descriptions for s in strings)  # the TODOs quote the stored strings
    assert {f.name for f in manifest.features if f.type == "category"} == set(
        _string_columns(frame)
    )
    background = json.loads((tmp_path / "m" / "background.json").read_text())
    assert {row["housing"] for row in background} <= set(
        manifest.feature("housing").categories or []
    )


def test_an_applicant_sent_with_category_ids_is_explained_as_the_library_predicts(
    trained: dict[str, Any], german: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    frame, _ = german
    import_model(trained["artifact"], trained["sample"], tmp_path / "m", target=LABEL)
    model = _serve(tmp_path / "m")
    assert model.explainer.algorithm == "treeshap-path-dependent"
    if model.manifest.kind == "xgboost":
        # The matrix says which columns are categorical, as XGBoost documents its input.
        matrix = model.scorer.model_input(model.background[:1])
        assert matrix.feature_types == trained["classifier"].get_booster().feature_types
    library_p = trained["classifier"].predict_proba(frame.head(CHECKED_ROWS))[:, 1]
    for i in range(CHECKED_ROWS):
        attributions = attribute(model, model.explainer, _applicant(model, frame, i), 1e-6)
        assert abs(attributions.additivity_residual) <= 1e-6
        prediction = predict(model.manifest, attributions.model_output)
        assert prediction.score == pytest.approx(library_p[i], abs=1e-6)


def test_a_sample_of_the_integer_codes_gives_the_same_features(
    trained: dict[str, Any], german: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    frame, good = german
    coded = frame.copy()
    for column in _string_columns(frame):
        coded[column] = frame[column].cat.codes
    sample = _write_sample(coded, good, tmp_path / "codes.csv")
    from_codes = import_model(trained["artifact"], sample, tmp_path / "codes", target=LABEL)
    from_strings = import_model(
        trained["artifact"], trained["sample"], tmp_path / "strings", target=LABEL
    )
    assert from_codes.features == from_strings.features


def test_a_sample_value_the_model_never_saw_is_refused_naming_column_and_value(
    trained: dict[str, Any], german: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    frame, good = german
    strange = frame.astype({"housing": str}).copy()
    strange.loc[3, "housing"] = "houseboat"
    sample = _write_sample(strange, good, tmp_path / "strange.csv")
    with pytest.raises(ImportRefused, match=r"'housing'.*'houseboat'"):
        import_model(trained["artifact"], sample, tmp_path / "m", target=LABEL)
    assert not (tmp_path / "m").exists()


def test_text_for_a_booster_that_stores_no_categories_is_refused_and_its_codes_taken(
    german: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    # XGBoost before 3.1 (or trained on the codes, as here) keeps no category values.
    import xgboost

    frame, good = german
    coded = frame.copy()
    for column in _string_columns(frame):
        coded[column] = frame[column].cat.codes
    types = ["c" if c in _string_columns(frame) else "q" for c in frame.columns]
    matrix = xgboost.DMatrix(coded, good, feature_types=types, enable_categorical=True)
    booster = xgboost.train({"tree_method": "hist", "nthread": 1}, matrix, num_boost_round=5)
    booster.save_model(str(tmp_path / "model.json"))
    assert booster.get_categories().empty()
    strings = _write_sample(frame, good, tmp_path / "strings.csv")
    with pytest.raises(ImportRefused, match=r"'housing'.*hold text.*give the sample as the codes"):
        import_model(tmp_path / "model.json", strings, tmp_path / "m", target=LABEL)
    codes = _write_sample(coded, good, tmp_path / "codes.csv")
    manifest = import_model(tmp_path / "model.json", codes, tmp_path / "m", target=LABEL)
    housing = manifest.feature("housing")
    assert housing.type == "category" and housing.codes == [0, 1, 2]


def test_lightgbm_lists_that_cannot_be_paired_with_its_features_are_refused(
    german: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    # An ordered category column is stored with the others but split on as a number.
    frame, good = german
    ordered = frame.copy()
    ordered["housing"] = ordered["housing"].cat.as_ordered()
    _lightgbm(ordered, good, tmp_path)
    sample = _write_sample(frame, good, tmp_path / "sample.csv")
    with pytest.raises(
        ImportRefused,
        match=f"stores the values of {len(_string_columns(frame))} pandas category columns",
    ):
        import_model(tmp_path / "model.txt", sample, tmp_path / "m", target=LABEL)


def test_stored_values_that_are_fractions_are_refused() -> None:
    # A category is named by text or a whole number; 0.5 must not become the code of 0.
    whole = SimpleNamespace(pandas_categorical=[["a", "b"], [1.0, 2.0]])
    assert lightgbm_categories(whole, ["letters", "counts"]) == {
        "letters": ["a", "b"],
        "counts": [1, 2],
    }
    halves = SimpleNamespace(pandas_categorical=[["a", "b"], [0.5, 1.5]])
    with pytest.raises(ValueError, match=r"0\.5 is neither text nor a whole number"):
        lightgbm_categories(halves, ["letters", "halves"])


def test_models_check_takes_the_sample_the_import_took(
    trained: dict[str, Any], german: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    # README: import with a sample, fill in the TODOs, check the directory with the sample
    # before serving it. The check read only rows in request form (feature names, category
    # ids), so the import's own sample (the model's columns, the raw strings) failed on
    # every row: "unknown category; allowed: ['f_0_dm', ...]".
    from expound.explainers.algorithms import build_explainer
    from expound.explainers.checking import check_model_directory

    frame, good = german
    directory = tmp_path / "m"
    import_model(trained["artifact"], trained["sample"], directory, target=LABEL)
    _serve(directory)
    report = check_model_directory(
        directory, build_explainer, sample=trained["sample"], target=LABEL, adverse_value="0"
    )
    assert report.ok, report.render()
    assert f"sample: {len(frame)} of {len(frame)} row(s) explained" in report.render()
    # The tolerance printed is the one applied: XGBoost's float32 output is held to 1e-5.
    residual, tolerance = re.findall(
        r"largest residual ([0-9.e+-]+), tolerance ([0-9.e+-]+)", report.render()
    )[0]
    assert float(residual) <= float(tolerance)
    # A value the model never saw is named by its line, the rest still explained.
    unseen = frame.astype({"purpose": object})
    unseen.loc[3, "purpose"] = "a yacht"
    broken = _write_sample(unseen, good, tmp_path / "unseen.csv")
    report = check_model_directory(directory, build_explainer, sample=broken)
    assert not report.ok
    [unseen_line] = [f for f in report.failures if "a yacht" in f]
    assert unseen_line.startswith(
        "line 5: purpose holds 'a yacht', which is not among the model's categories "
    ), report.render()
    assert f"sample: {len(frame) - 1} of {len(frame)} row(s) explained" in report.render()
