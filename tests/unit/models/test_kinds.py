"""Every model kind, trained here on the demo data with its library's own encoding, imported,
loaded and explained: attributions equal a direct shap call on the same row (1e-6), add up
to the model's output, and the decision is the library's own predict_proba at 0.5."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shap
import skops.io

from expound.domain import FeatureScalar
from expound.explainers.algorithms import build_explainer
from expound.explainers.base import attribute
from expound.explainers.reasons import predict
from expound.models.importing import feature_value, import_model
from expound.models.registry import ServedModel, load_model
from tests.unit.models.conftest import CATEGORICAL, reviewed, write_sample

ROWS = 6


def serve(directory: Path) -> ServedModel:
    """Loads an imported directory as the registry does, once its TODO wording is written."""
    path = directory / "manifest.json"
    path.write_text(json.dumps(reviewed(json.loads(path.read_text()))))
    loaded = load_model(directory)
    return ServedModel(
        manifest=loaded.manifest,
        scorer=loaded.scorer,
        background=loaded.background,
        directory=loaded.directory,
        explainer=build_explainer(loaded),
    )


def feature_rows(model: ServedModel, frame: pd.DataFrame) -> list[dict[str, FeatureScalar]]:
    """The first sample rows as a request sends them (labels, one value per feature)."""
    records = frame.head(ROWS).to_dict(orient="records")
    return [{s.name: feature_value(s, r) for s in model.manifest.features} for r in records]


def check(
    model: ServedModel,
    frame: pd.DataFrame,
    direct: Callable[[pd.DataFrame], np.ndarray],
    proba: Callable[[pd.DataFrame], np.ndarray],
    *,
    exact: bool = True,
    rows: int = ROWS,
) -> None:
    """Attributions vs a direct shap call, additivity, and the library's own decision."""
    library_p = proba(frame.head(rows))
    for i, features in enumerate(feature_rows(model, frame)[:rows]):
        row = model.encode(features)
        ours = model.explainer.explain_row(row).contributions
        if exact:
            np.testing.assert_allclose(ours, direct(frame.iloc[[i]]), atol=1e-6)
        attributions = attribute(model, model.explainer, features, tolerance=1e-6)
        assert abs(attributions.additivity_residual) <= 1e-6
        assert len(attributions.items) == len(model.manifest.features)
        prediction = predict(model.manifest, attributions.model_output)
        # XGBoost computes its own probabilities in float32.
        assert prediction.score == pytest.approx(library_p[i], abs=1e-6)
        assert prediction.adverse is bool(library_p[i] >= 0.5)


def shap_values(explainer: Any, data: Any, output: int | None = None) -> np.ndarray:
    values = np.asarray(explainer.shap_values(data))
    if values.ndim == 3:
        values = values[..., output if output is not None else 1]
    return np.asarray(values[0])


@pytest.fixture
def sample(credit_frame: tuple[pd.DataFrame, np.ndarray], tmp_path: Path) -> Path:
    frame, labels = credit_frame
    return write_sample(frame, labels, tmp_path / "sample.csv")


def test_lightgbm_sklearn_api_with_native_categories(
    credit_frame: tuple[pd.DataFrame, np.ndarray], sample: Path, tmp_path: Path
) -> None:
    import lightgbm

    frame, labels = credit_frame
    classifier = lightgbm.LGBMClassifier(
        n_estimators=60, num_leaves=8, random_state=1, verbose=-1, n_jobs=1
    )
    classifier.fit(frame, labels, categorical_feature=CATEGORICAL)
    classifier.booster_.save_model(str(tmp_path / "booster.txt"))
    import_model(tmp_path / "booster.txt", sample, tmp_path / "lgbm", target="target")
    model = serve(tmp_path / "lgbm")
    assert model.manifest.feature("purpose").type == "category"  # from the artifact
    reference = shap.TreeExplainer(classifier.booster_)
    check(
        model,
        frame,
        lambda x: np.asarray(classifier.booster_.predict(x, pred_contrib=True))[0, :-1],
        lambda x: classifier.predict_proba(x)[:, 1],
    )
    assert reference.expected_value == pytest.approx(
        model.explainer.explain_row(model.background[:1]).base_value
    )


@pytest.mark.parametrize("suffix", ["json", "ubj"])
def test_xgboost_json_and_ubjson(
    credit_frame: tuple[pd.DataFrame, np.ndarray], sample: Path, tmp_path: Path, suffix: str
) -> None:
    import xgboost

    frame, labels = credit_frame
    classifier = xgboost.XGBClassifier(n_estimators=60, max_depth=3, random_state=1, n_jobs=1)
    classifier.fit(frame, labels)
    classifier.get_booster().save_model(str(tmp_path / f"model.{suffix}"))
    import_model(tmp_path / f"model.{suffix}", sample, tmp_path / "xgb", target="target")
    model = serve(tmp_path / "xgb")
    reference = shap.TreeExplainer(classifier.get_booster())
    check(
        model,
        frame,
        lambda x: shap_values(reference, x),
        lambda x: classifier.predict_proba(x)[:, 1],
    )


def test_xgboost_with_interventional_treeshap(
    credit_frame: tuple[pd.DataFrame, np.ndarray], sample: Path, tmp_path: Path
) -> None:
    # shap's interventional explainer takes its background and rows as arrays; it was
    # given the DMatrix XGBoost predicts on ("Unsupported masker type"), so the model was
    # refused at load with "'tree' does not apply".
    import xgboost

    frame, labels = credit_frame
    classifier = xgboost.XGBClassifier(n_estimators=40, max_depth=3, random_state=1, n_jobs=1)
    classifier.fit(frame, labels)
    classifier.get_booster().save_model(str(tmp_path / "model.json"))
    import_model(tmp_path / "model.json", sample, tmp_path / "xgb", target="target")
    manifest = json.loads((tmp_path / "xgb" / "manifest.json").read_text())
    manifest["tree_shap"] = "interventional"
    (tmp_path / "xgb" / "manifest.json").write_text(json.dumps(manifest))
    model = serve(tmp_path / "xgb")
    assert model.explainer.algorithm == "treeshap-interventional"
    reference = shap.TreeExplainer(
        classifier.get_booster(),
        data=np.asarray(model.background, dtype=np.float64),
        feature_perturbation="interventional",
        model_output="raw",
    )
    check(
        model,
        frame,
        lambda x: shap_values(reference, x.to_numpy(dtype=np.float64)),
        lambda x: classifier.predict_proba(x)[:, 1],
    )


def test_catboost_cbm_with_its_own_categories(
    credit_frame: tuple[pd.DataFrame, np.ndarray], sample: Path, tmp_path: Path
) -> None:
    import catboost

    frame, labels = credit_frame
    classifier = catboost.CatBoostClassifier(
        iterations=60, depth=4, random_seed=1, verbose=0, thread_count=1, allow_writing_files=False
    )
    classifier.fit(frame, labels, cat_features=CATEGORICAL)
    classifier.save_model(str(tmp_path / "model.cbm"), format="cbm")
    import_model(tmp_path / "model.cbm", sample, tmp_path / "cb", target="target")
    model = serve(tmp_path / "cb")
    spec = model.manifest.feature("checking_account")
    assert spec.type == "category" and spec.codes == [0, 1, 2, 3]
    reference = shap.TreeExplainer(classifier)
    check(
        model,
        frame,
        lambda x: shap_values(reference, catboost.Pool(x, cat_features=CATEGORICAL)),
        lambda x: classifier.predict_proba(x)[:, 1],
    )


def _sklearn_trees() -> list[Any]:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeClassifier

    return [
        DecisionTreeClassifier(max_depth=5, random_state=1),
        RandomForestClassifier(n_estimators=30, max_depth=6, random_state=1, n_jobs=1),
        ExtraTreesClassifier(n_estimators=30, max_depth=6, random_state=1, n_jobs=1),
        GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=1),
        HistGradientBoostingClassifier(max_iter=40, random_state=1),
    ]


@pytest.mark.parametrize("estimator", _sklearn_trees(), ids=lambda e: type(e).__name__)
def test_sklearn_tree_models_through_skops(
    credit_frame: tuple[pd.DataFrame, np.ndarray], sample: Path, tmp_path: Path, estimator: Any
) -> None:
    frame, labels = credit_frame
    estimator.fit(frame, labels)
    skops.io.dump(estimator, tmp_path / "model.skops")
    manifest = import_model(tmp_path / "model.skops", sample, tmp_path / "m", target="target")
    # Forests and single trees give probabilities, boosting gives log-odds: declared so.
    log_odds = hasattr(estimator, "decision_function")
    assert manifest.score.space == ("log_odds" if log_odds else "probability")
    assert manifest.explainer == "tree"
    model = serve(tmp_path / "m")
    reference = shap.TreeExplainer(estimator)
    check(
        model,
        frame,
        lambda x: shap_values(reference, x),
        lambda x: estimator.predict_proba(x)[:, 1],
    )
    if not log_odds:
        # The forests' fast path is sklearn's own arithmetic: the same numbers on every row.
        ours = model.scorer.raw(frame.to_numpy(dtype=np.float64))
        expected = estimator.predict_proba(frame)[:, 1]
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-15)


def _pipeline(final: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [
                        ("onehot", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                        ("scale", StandardScaler(), ["credit_amount", "duration_months"]),
                    ],
                    remainder="passthrough",
                ),
            ),
            ("classify", final),
        ]
    )


@pytest.mark.parametrize("final", ["gradient_boosting", "logistic"])
def test_pipeline_encodings_are_summed_back_to_the_original_column(
    credit_frame: tuple[pd.DataFrame, np.ndarray], sample: Path, tmp_path: Path, final: str
) -> None:
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    frame, labels = credit_frame
    estimator = (
        GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=1)
        if final == "gradient_boosting"
        else LogisticRegression(C=0.3, max_iter=3000)
    )
    pipeline = _pipeline(estimator).fit(frame, labels)
    skops.io.dump(pipeline, tmp_path / "model.skops")
    manifest = import_model(tmp_path / "model.skops", sample, tmp_path / "p", target="target")
    assert manifest.explainer == ("tree" if final == "gradient_boosting" else "linear")
    model = serve(tmp_path / "p")
    encode = pipeline[:-1]
    reference = (
        shap.TreeExplainer(estimator)
        if final == "gradient_boosting"
        else shap.LinearExplainer(
            (estimator.coef_[0], estimator.intercept_[0]),
            shap.maskers.Independent(
                encode.transform(model.scorer.model_input(model.background)), max_samples=200
            ),
        )
    )
    # The direct call explains the encoded columns; each is summed into the column it came
    # from (one-hot columns of a category, in the ColumnTransformer's order).
    names = list(encode.get_feature_names_out())
    source = [
        next(
            c
            for c in frame.columns
            if n.split("__", 1)[1] == c or n.split("__", 1)[1].startswith(c + "_")
        )
        for n in names
    ]

    def direct(x: pd.DataFrame) -> np.ndarray:
        values = shap_values(reference, encode.transform(x))
        summed = pd.Series(values, index=source).groupby(level=0).sum()
        return summed.reindex(frame.columns).to_numpy()

    check(model, frame, direct, lambda x: pipeline.predict_proba(x)[:, 1])


@pytest.mark.slow  # permutation sampling: about 2 s a row
def test_any_predict_proba_classifier_through_the_sampling_explainer(
    credit_frame: tuple[pd.DataFrame, np.ndarray], sample: Path, tmp_path: Path
) -> None:
    from sklearn.naive_bayes import GaussianNB

    frame, labels = credit_frame
    estimator = GaussianNB().fit(frame, labels)
    skops.io.dump(estimator, tmp_path / "model.skops")
    manifest = import_model(tmp_path / "model.skops", sample, tmp_path / "nb", target="target")
    assert (manifest.explainer, manifest.score.space) == ("sampling", "probability")
    model = serve(tmp_path / "nb")
    check(
        model,
        frame,
        lambda x: np.zeros(0),
        lambda x: estimator.predict_proba(x)[:, 1],
        exact=False,
        rows=2,
    )


def test_interventional_treeshap_against_the_background_set(
    credit_frame: tuple[pd.DataFrame, np.ndarray], sample: Path, tmp_path: Path
) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    frame, labels = credit_frame
    estimator = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=1)
    estimator.fit(frame, labels)
    skops.io.dump(estimator, tmp_path / "model.skops")
    import_model(tmp_path / "model.skops", sample, tmp_path / "m", target="target")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    manifest["tree_shap"] = "interventional"
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    model = serve(tmp_path / "m")
    assert model.explainer.algorithm == "treeshap-interventional"
    assert model.explainer.background_sha256 == model.manifest.background_sha256
    reference = shap.TreeExplainer(
        estimator,
        data=model.scorer.model_input(model.background),
        feature_perturbation="interventional",
    )
    check(
        model,
        frame,
        lambda x: shap_values(reference, x),
        lambda x: estimator.predict_proba(x)[:, 1],
    )


@pytest.fixture
def string_coded(
    credit_frame: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> tuple[pd.DataFrame, np.ndarray, Path]:
    """The demo data with its categories as the source's own strings (e.g. "A14")."""
    from expound.models.demo_schema import FEATURES

    frame, labels = credit_frame
    data = frame.copy()
    for spec in FEATURES:
        if spec.type == "category":
            data[spec.name] = [f"A{code}" for code in frame[spec.name]]
    return data, labels, write_sample(data, labels, tmp_path / "strings.csv")


def test_catboost_with_string_categories(
    string_coded: tuple[pd.DataFrame, np.ndarray, Path], tmp_path: Path
) -> None:
    import catboost

    frame, labels, sample = string_coded
    classifier = catboost.CatBoostClassifier(
        iterations=40, depth=4, random_seed=1, verbose=0, thread_count=1, allow_writing_files=False
    )
    classifier.fit(frame, labels, cat_features=CATEGORICAL)
    classifier.save_model(str(tmp_path / "model.cbm"), format="cbm")
    import_model(tmp_path / "model.cbm", sample, tmp_path / "cb", target="target")
    model = serve(tmp_path / "cb")
    assert model.manifest.feature("housing").codes == ["A0", "A1", "A2"]
    reference = shap.TreeExplainer(classifier)
    check(
        model,
        frame,
        lambda x: shap_values(reference, catboost.Pool(x, cat_features=CATEGORICAL)),
        lambda x: classifier.predict_proba(x)[:, 1],
    )


def test_pipeline_with_ordinal_and_one_hot_encoding_of_strings(
    string_coded: tuple[pd.DataFrame, np.ndarray, Path], tmp_path: Path
) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    frame, labels, sample = string_coded
    ordinal = ["savings", "employment_since"]
    onehot = [c for c in CATEGORICAL if c not in ordinal]
    pipeline = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [
                        ("onehot", OneHotEncoder(drop="first"), onehot),
                        ("ordinal", OrdinalEncoder(), ordinal),
                    ],
                    remainder="passthrough",
                ),
            ),
            ("classify", HistGradientBoostingClassifier(max_iter=30, random_state=1)),
        ]
    ).fit(frame, labels)
    skops.io.dump(pipeline, tmp_path / "model.skops")
    manifest = import_model(tmp_path / "model.skops", sample, tmp_path / "p", target="target")
    assert (manifest.explainer, manifest.score.space) == ("tree", "log_odds")
    model = serve(tmp_path / "p")
    encode = pipeline[:-1]
    reference = shap.TreeExplainer(pipeline[-1])
    names = list(encode.get_feature_names_out())
    source = [
        next(
            c
            for c in frame.columns
            if n.split("__", 1)[1] == c or n.split("__", 1)[1].startswith(c + "_")
        )
        for n in names
    ]

    def direct(x: pd.DataFrame) -> np.ndarray:
        values = shap_values(reference, encode.transform(x))
        summed = pd.Series(values, index=source).groupby(level=0).sum()
        return summed.reindex(frame.columns).fillna(0.0).to_numpy()

    check(model, frame, direct, lambda x: pipeline.predict_proba(x)[:, 1])
