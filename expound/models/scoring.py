"""Scoring models: one narrow contract over the artifact formats expound loads.

``raw(rows)`` returns the model output in its explanation space, for the class the
manifest's ``score`` names: log-odds (boosters, gradient boosting, linear models) or a
probability (forests, single trees, any ``predict_proba``); :func:`score_of` turns it into
the score. Artifacts are loaded only after their sha256 matched the manifest, and only
from safe formats: LightGBM's text format, XGBoost JSON/UBJSON, CatBoost ``.cbm`` and
skops with exactly the types the manifest trusts (never pickle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from expound.errors import ModelIntegrityError
from expound.models.manifest import ModelManifest, ScoreSpace

FloatMatrix = npt.NDArray[np.float64]


class ScoringModel(Protocol):
    """A loaded model artifact."""

    kind: str
    library_version: str
    # The input column names the artifact records (None when it records none).
    feature_names: list[str] | None
    n_columns: int
    # The smallest additivity tolerance the library's own arithmetic allows (XGBoost sums
    # its trees in float32); 0 for float64 libraries.
    output_precision: float

    def raw(self, rows: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """Model output (explanation space, the score's class) for encoded rows."""
        ...

    def model_input(self, rows: npt.NDArray[Any]) -> Any:
        """Encoded rows as the library itself takes them (array or data frame)."""
        ...

    def raw_input(self, data: Any) -> npt.NDArray[np.float64]:
        """``raw`` for rows already in the library's form (``model_input``'s result): an
        explainer that built that form once for its own call reuses it."""
        ...


def sigmoid(raw: float) -> float:
    """The probability for a log-odds value."""
    return float(1.0 / (1.0 + np.exp(-raw)))


def score_of(space: ScoreSpace, raw: float) -> float:
    """The score (a probability) for a raw output in ``space``."""
    return sigmoid(raw) if space == "log_odds" else float(raw)


def _binary_margin(manifest: ModelManifest, directory: Path, library: str) -> None:
    """A binary booster has one output, the log-odds of class 1."""
    if manifest.score.space != "log_odds" or manifest.score.output != 1:
        raise ModelIntegrityError.of(
            directory,
            "score",
            f"a binary {library} model outputs the log-odds of class 1; "
            'declare {"output": 1, "space": "log_odds"}',
        )


def one_thread_booster(lightgbm: Any) -> Any:
    """``lightgbm.Booster`` predicting on one thread unless told otherwise.

    One row at a time gains nothing from threads, and on a busy machine LightGBM's OpenMP
    team costs milliseconds a call (0.1 ms -> 8 ms measured at p95 for 100 trees). shap's
    TreeExplainer calls ``predict(pred_contrib=True)`` itself, with no way to pass
    ``num_threads``: the default is set here, on the booster class it calls.
    """

    class OneThreadBooster(lightgbm.Booster):  # type: ignore[misc]
        def predict(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("num_threads", 1)
            return super().predict(*args, **kwargs)

    return OneThreadBooster


class LightGBMModel:
    """A LightGBM booster (``lightgbm.train`` or ``LGBMClassifier.booster_``), text format."""

    kind = "lightgbm"
    output_precision = 0.0

    def __init__(self, path: Path, manifest: ModelManifest, directory: Path) -> None:
        import lightgbm

        _binary_margin(manifest, directory, "LightGBM")
        self.booster = one_thread_booster(lightgbm)(model_file=str(path))
        self.library_version = f"lightgbm {lightgbm.__version__}"
        names = list(self.booster.feature_name())
        # LightGBM names unnamed columns Column_0, Column_1, ...: it recorded none.
        unnamed = names == [f"Column_{j}" for j in range(len(names))]
        self.feature_names = None if unnamed else names
        self.n_columns = len(names)
        self.estimator: Any = self.booster

    def model_input(self, rows: npt.NDArray[Any]) -> Any:
        return np.asarray(rows, dtype=np.float64)

    def raw(self, rows: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        return self.raw_input(self.model_input(rows))

    def raw_input(self, data: Any) -> npt.NDArray[np.float64]:
        return np.asarray(self.booster.predict(data, raw_score=True), dtype=np.float64)


class XGBoostModel:
    """An XGBoost booster saved as JSON or UBJSON (``save_model("model.json")``)."""

    kind = "xgboost"
    output_precision = 1e-5

    def __init__(self, path: Path, manifest: ModelManifest, directory: Path) -> None:
        import xgboost

        _binary_margin(manifest, directory, "XGBoost")
        self.booster = xgboost.Booster(model_file=str(path))
        # One row at a time: threads only add their start-up cost.
        self.booster.set_param({"nthread": 1})
        self.library_version = f"xgboost {xgboost.__version__}"
        self.feature_names = list(self.booster.feature_names or []) or None
        self.n_columns = int(self.booster.num_features())
        self.estimator: Any = self.booster
        # A booster trained on categorical data ('c') takes its category codes (the index of
        # the value in the categories it stores) in a matrix that says which columns are
        # categorical, as XGBoost documents; only then, so other boosters' input is as built.
        types = list(self.booster.feature_types or [])
        self._categorical_types = types if "c" in types else None

    def model_input(self, rows: npt.NDArray[Any]) -> Any:
        import xgboost

        matrix = np.asarray(rows, dtype=np.float64)
        if self._categorical_types is None:
            return xgboost.DMatrix(matrix, feature_names=self.feature_names, nthread=1)
        return xgboost.DMatrix(
            matrix,
            feature_names=self.feature_names,
            feature_types=self._categorical_types,
            enable_categorical=True,
            nthread=1,
        )

    def raw(self, rows: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        return self.raw_input(self.model_input(rows))

    def raw_input(self, data: Any) -> npt.NDArray[np.float64]:
        return np.asarray(self.booster.predict(data, output_margin=True), dtype=np.float64)


class CatBoostModel:
    """A CatBoost classifier in its own ``.cbm`` format."""

    kind = "catboost"
    output_precision = 0.0

    def __init__(self, path: Path, manifest: ModelManifest, directory: Path) -> None:
        import catboost

        _binary_margin(manifest, directory, "CatBoost")
        self.model = catboost.CatBoost()
        self.model.load_model(str(path), format="cbm")
        self.library_version = f"catboost {catboost.__version__}"
        self.feature_names = list(self.model.feature_names_)
        self.n_columns = len(self.feature_names)
        self._categorical = set(self.model.get_cat_feature_indices())
        self.estimator: Any = self.model

    def model_input(self, rows: npt.NDArray[Any]) -> Any:
        import catboost

        data = [
            # CatBoost takes category values as integers or strings, never floats.
            [
                (v if isinstance(v, str) else int(v)) if j in self._categorical else float(v)
                for j, v in enumerate(row)
            ]
            for row in np.asarray(rows, dtype=object)
        ]
        return catboost.Pool(
            data, cat_features=sorted(self._categorical), feature_names=self.feature_names
        )

    def raw(self, rows: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        return self.raw_input(self.model_input(rows))

    def raw_input(self, data: Any) -> npt.NDArray[np.float64]:
        prediction = self.model.predict(data, prediction_type="RawFormulaVal")
        return np.asarray(prediction, dtype=np.float64).reshape(-1)


class SklearnModel:
    """A scikit-learn classifier or Pipeline, loaded with skops.

    skops refuses to build any type outside its default-trusted set unless the manifest's
    ``trusted_types`` lists it (a forest needs ``sklearn.tree._tree.Tree``, for one); an
    artifact that asks for any other type is refused.
    """

    kind = "sklearn"
    output_precision = 0.0

    def __init__(self, path: Path, manifest: ModelManifest, directory: Path) -> None:
        import sklearn
        import skops.io

        untrusted = set(skops.io.get_untrusted_types(file=path))
        extra = untrusted - set(manifest.trusted_types)
        if extra:
            raise ModelIntegrityError.of(
                directory,
                "trusted_types",
                f"{path.name} needs types the manifest does not trust: {sorted(extra)}",
            )
        self.pipeline: Any = skops.io.load(path, trusted=sorted(untrusted))
        self.library_version = f"scikit-learn {sklearn.__version__}"
        names = getattr(self.pipeline, "feature_names_in_", None)
        self.feature_names = [str(n) for n in names] if names is not None else None
        self.n_columns = int(self.pipeline.n_features_in_)
        self._output = manifest.score.output
        self._space = manifest.score.space
        estimator = self.pipeline[-1] if hasattr(self.pipeline, "steps") else self.pipeline
        method = "decision_function" if self._space == "log_odds" else "predict_proba"
        if not hasattr(estimator, method):
            raise ModelIntegrityError.of(
                directory,
                "score.space",
                f"{type(estimator).__name__} has no {method}; "
                + (
                    'declare "probability"'
                    if self._space == "log_odds"
                    else "explain it with a model that gives probabilities"
                ),
            )
        classes = len(getattr(estimator, "classes_", []))
        if self._space == "log_odds" and (classes != 2 or self._output != 1):
            raise ModelIntegrityError.of(
                directory, "score.output", "log-odds are of class 1 of a binary classifier"
            )
        if self._space == "probability" and self._output >= classes:
            raise ModelIntegrityError.of(
                directory, "score.output", f"the model has {classes} classes, no {self._output}"
            )
        is_pipeline = hasattr(self.pipeline, "steps")
        self.estimator = self.pipeline[-1] if is_pipeline else self.pipeline
        self.transform = self.pipeline[:-1].transform if is_pipeline else None
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

        forests = (RandomForestClassifier, ExtraTreesClassifier)
        self._forest = type(self.pipeline) in forests and self._space == "probability"

    def model_input(self, rows: npt.NDArray[Any]) -> Any:
        import pandas as pd

        if self.feature_names is None:
            return rows
        return pd.DataFrame(rows, columns=self.feature_names)

    def _forest_proba(self, rows: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        # A forest's predict_proba is the mean of its trees' predict_proba, added in tree
        # order (sklearn.ensemble._forest); calling the trees directly does the same
        # arithmetic without the per-call validation and joblib dispatch, which cost 5 ms
        # a row for 100 trees, 10x the TreeSHAP itself (equality tested).
        x = np.asarray(rows, dtype=np.float32)
        total = np.zeros((len(x), len(self.estimator.classes_)), dtype=np.float64)
        for tree in self.estimator.estimators_:
            total += tree.predict_proba(x, check_input=False)
        total /= len(self.estimator.estimators_)
        return total[:, self._output]

    def raw(self, rows: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        if self._forest:
            return self._forest_proba(rows)
        return self.raw_input(self.model_input(rows))

    def raw_input(self, data: Any) -> npt.NDArray[np.float64]:
        if self._space == "log_odds":
            return np.asarray(self.pipeline.decision_function(data), dtype=np.float64)
        return np.asarray(self.pipeline.predict_proba(data), dtype=np.float64)[:, self._output]


def load_scoring_model(manifest: ModelManifest, directory: Path) -> ScoringModel:
    """Loads the artifact a manifest names (its hash already checked) and checks that the
    columns it records are the manifest's, in the same order."""
    path = directory / manifest.artifact
    loaders: dict[str, type[Any]] = {
        "lightgbm": LightGBMModel,
        "xgboost": XGBoostModel,
        "catboost": CatBoostModel,
        "sklearn": SklearnModel,
    }
    scorer: ScoringModel = loaders[manifest.kind](path, manifest, directory)
    expected = manifest.model_columns()
    if scorer.n_columns != len(expected):
        raise ModelIntegrityError.of(
            directory,
            "columns",
            f"the artifact takes {scorer.n_columns} columns, the manifest gives {len(expected)}",
        )
    if scorer.feature_names is not None and scorer.feature_names != expected:
        where = next(
            j for j, (a, b) in enumerate(zip(scorer.feature_names, expected, strict=True)) if a != b
        )
        raise ModelIntegrityError.of(
            directory,
            "columns",
            f"column {where} is {expected[where]!r} in the manifest but "
            f"{scorer.feature_names[where]!r} in the artifact (artifact order: "
            f"{scorer.feature_names})",
        )
    return scorer
