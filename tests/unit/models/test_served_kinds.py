"""The matrix over gRPC: every model kind of test_kinds, trained here on the demo data with
its library's own encoding, imported, its wording written, served by a real server on port
0 and explained over real gRPC. Per row: the decision is the library's own predict_proba at
the threshold, each attribution equals a direct shap call to 1e-6, and the deterministic
explanation passes the gate."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shap
import skops.io

from expound.clients.client import explain_request
from expound.models.importing import feature_value, import_model
from expound.models.manifest import ModelManifest
from expound.models.registry import load_model
from expound.settings import Settings
from tests.unit.models.conftest import CATEGORICAL, reviewed, write_sample
from tests.unit.models.test_kinds import _pipeline, _sklearn_trees, shap_values

ROWS = 4
MODEL_ID = "served-kind"
Frame = pd.DataFrame
Values = Callable[[Frame], np.ndarray]


@dataclass
class Trained:
    """A model written to ``artifact``, the frame it was trained on, a direct shap call per
    frame column (given the imported directory) and the library's own P(class 1)."""

    artifact: Path
    frame: Frame
    # None for the sampling explainer: no exact value to compare with.
    direct_for: Callable[[Path], Values | None]
    proba: Values


def _fixed(direct: Values | None) -> Callable[[Path], Values | None]:
    return lambda _directory: direct


def _string_coded(frame: Frame) -> Frame:
    data = frame.copy()
    for name in CATEGORICAL:
        data[name] = [f"A{code}" for code in frame[name]]
    return data


def _summed_back(reference: Any, encode: Any, frame: Frame) -> Values:
    """A direct call on a Pipeline's encoded columns, summed into the column each came from."""
    names = [n.split("__", 1)[1] for n in encode.get_feature_names_out()]
    source = [next(c for c in frame.columns if n == c or n.startswith(c + "_")) for n in names]

    def direct(x: Frame) -> np.ndarray:
        values = shap_values(reference, encode.transform(x))
        summed = pd.Series(values, index=source).groupby(level=0).sum()
        return summed.reindex(frame.columns).fillna(0.0).to_numpy()

    return direct


def _lightgbm(frame: Frame, y: np.ndarray, out: Path) -> Trained:
    import lightgbm

    model = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1, n_jobs=1)
    model.fit(frame, y, categorical_feature=CATEGORICAL)
    model.booster_.save_model(str(out / "booster.txt"))
    booster = model.booster_
    return Trained(
        out / "booster.txt",
        frame,
        _fixed(lambda x: np.asarray(booster.predict(x, pred_contrib=True))[0, :-1]),
        lambda x: model.predict_proba(x)[:, 1],
    )


def _xgboost(suffix: str) -> Callable[[Frame, np.ndarray, Path], Trained]:
    def train(frame: Frame, y: np.ndarray, out: Path) -> Trained:
        import xgboost

        model = xgboost.XGBClassifier(n_estimators=30, max_depth=3, random_state=1, n_jobs=1)
        model.fit(frame, y)
        model.get_booster().save_model(str(out / f"model.{suffix}"))
        reference = shap.TreeExplainer(model.get_booster())
        return Trained(
            out / f"model.{suffix}",
            frame,
            _fixed(lambda x: shap_values(reference, x)),
            lambda x: model.predict_proba(x)[:, 1],
        )

    return train


def _catboost(strings: bool) -> Callable[[Frame, np.ndarray, Path], Trained]:
    def train(frame: Frame, y: np.ndarray, out: Path) -> Trained:
        import catboost

        data = _string_coded(frame) if strings else frame
        model = catboost.CatBoostClassifier(
            iterations=30,
            depth=4,
            random_seed=1,
            verbose=0,
            thread_count=1,
            allow_writing_files=False,
        )
        model.fit(data, y, cat_features=CATEGORICAL)
        model.save_model(str(out / "model.cbm"), format="cbm")
        reference = shap.TreeExplainer(model)
        return Trained(
            out / "model.cbm",
            data,
            _fixed(lambda x: shap_values(reference, catboost.Pool(x, cat_features=CATEGORICAL))),
            lambda x: model.predict_proba(x)[:, 1],
        )

    return train


def _sklearn(estimator: Any) -> Callable[[Frame, np.ndarray, Path], Trained]:
    def train(frame: Frame, y: np.ndarray, out: Path) -> Trained:
        estimator.fit(frame, y)
        skops.io.dump(estimator, out / "model.skops")
        reference = shap.TreeExplainer(estimator)
        return Trained(
            out / "model.skops",
            frame,
            _fixed(lambda x: shap_values(reference, x)),
            lambda x: estimator.predict_proba(x)[:, 1],
        )

    return train


def _sklearn_pipeline(final: str) -> Callable[[Frame, np.ndarray, Path], Trained]:
    def train(frame: Frame, y: np.ndarray, out: Path) -> Trained:
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

        data = frame
        if final == "strings":  # one-hot (drop first) and ordinal encoding of string codes
            data = _string_coded(frame)
            ordinal = ["savings", "employment_since"]
            pipeline = Pipeline(
                [
                    (
                        "encode",
                        ColumnTransformer(
                            [
                                (
                                    "onehot",
                                    OneHotEncoder(drop="first"),
                                    [c for c in CATEGORICAL if c not in ordinal],
                                ),
                                ("ordinal", OrdinalEncoder(), ordinal),
                            ],
                            remainder="passthrough",
                        ),
                    ),
                    ("classify", HistGradientBoostingClassifier(max_iter=30, random_state=1)),
                ]
            )
        elif final == "gradient_boosting":
            pipeline = _pipeline(GradientBoostingClassifier(n_estimators=30, random_state=1))
        else:
            pipeline = _pipeline(LogisticRegression(C=0.3, max_iter=3000))
        pipeline.fit(data, y)
        skops.io.dump(pipeline, out / "model.skops")
        encode, estimator = pipeline[:-1], pipeline[-1]

        def direct_for(directory: Path) -> Values:
            if final != "logistic":
                return _summed_back(shap.TreeExplainer(estimator), encode, data)
            # Linear SHAP is relative to the served model's background set, encoded.
            model = load_model(directory)
            background = encode.transform(model.scorer.model_input(model.background))
            reference = shap.LinearExplainer(
                (estimator.coef_[0], estimator.intercept_[0]),
                shap.maskers.Independent(background, max_samples=len(background)),
            )
            return _summed_back(reference, encode, data)

        return Trained(
            out / "model.skops", data, direct_for, lambda x: pipeline.predict_proba(x)[:, 1]
        )

    return train


def _sampling(frame: Frame, y: np.ndarray, out: Path) -> Trained:
    from sklearn.naive_bayes import GaussianNB

    estimator = GaussianNB().fit(frame, y)
    skops.io.dump(estimator, out / "model.skops")
    return Trained(
        out / "model.skops", frame, _fixed(None), lambda x: estimator.predict_proba(x)[:, 1]
    )


def _kinds() -> list[Any]:
    trees = [
        pytest.param(_sklearn(estimator), id=type(estimator).__name__)
        for estimator in _sklearn_trees()
    ]
    return [
        pytest.param(_lightgbm, id="LightGBM"),
        pytest.param(_xgboost("json"), id="XGBoost-json"),
        pytest.param(_xgboost("ubj"), id="XGBoost-ubj"),
        pytest.param(_catboost(strings=False), id="CatBoost"),
        pytest.param(_catboost(strings=True), id="CatBoost-strings"),
        *trees,
        pytest.param(_sklearn_pipeline("gradient_boosting"), id="Pipeline-GradientBoosting"),
        pytest.param(_sklearn_pipeline("logistic"), id="Pipeline-logistic"),
        pytest.param(_sklearn_pipeline("strings"), id="Pipeline-strings-HistGradientBoosting"),
        # Permutation sampling: about 2 s a row.
        pytest.param(_sampling, id="GaussianNB-sampling", marks=pytest.mark.slow),
    ]


@pytest.fixture(params=_kinds())
def served(
    request: pytest.FixtureRequest,
    credit_frame: tuple[Frame, np.ndarray],
    tmp_path: Path,
) -> tuple[Trained, Path]:
    """One kind trained, imported with the CLI's function and its wording written."""
    frame, labels = credit_frame
    trained: Trained = request.param(frame, labels, tmp_path)
    sample = write_sample(trained.frame, labels, tmp_path / "sample.csv")
    directory = tmp_path / "models" / MODEL_ID
    import_model(trained.artifact, sample, directory, target="target", model_id=MODEL_ID)
    path = directory / "manifest.json"
    path.write_text(json.dumps(reviewed(json.loads(path.read_text()))))
    return trained, directory


@pytest.fixture
def settings(served: tuple[Trained, Path], tmp_path: Path) -> Settings:
    """The root conftest's server settings, serving this kind's directory alone."""
    return Settings(
        host="127.0.0.1",
        port=0,
        model_dir=served[1].parent,
        archive_path=tmp_path / "archive.sqlite3",
        signing_key_path=tmp_path / "archive-signing-key.pem",
        grace_seconds=0.5,
        llm_mode="off",
    )


async def test_every_kind_is_served_and_explained_over_grpc(
    served: tuple[Trained, Path], stub: Any
) -> None:
    trained, directory = served
    manifest = ModelManifest.model_validate_json((directory / "manifest.json").read_text())
    direct = trained.direct_for(directory)
    head = trained.frame.head(ROWS if direct is not None else 2)
    library_p = trained.proba(head)
    columns = list(trained.frame.columns)
    for i, record in enumerate(head.to_dict(orient="records")):
        features = {s.name: feature_value(s, record) for s in manifest.features}
        response = await stub.Explain(explain_request(MODEL_ID, features))
        # The library's own decision (XGBoost computes its probabilities in float32).
        assert response.prediction.score == pytest.approx(library_p[i], abs=1e-6)
        assert response.prediction.adverse is bool(library_p[i] >= 0.5)
        ours = {a.feature: a.contribution for a in response.attributions.items}
        if direct is not None:
            theirs = direct(head.iloc[[i]])
            np.testing.assert_allclose([ours[c] for c in columns], theirs, rtol=0, atol=1e-6)
        total = response.attributions.base_value + sum(ours.values())
        assert total == pytest.approx(response.attributions.model_output, abs=1e-5)
        assert response.selected.faithful and not response.fallback
