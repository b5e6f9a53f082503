"""The three SHAP algorithms expound runs, chosen explicitly per model by its manifest.

- ``tree``: exact TreeSHAP through ``shap.TreeExplainer`` for every tree kind (LightGBM,
  XGBoost, CatBoost, scikit-learn trees, forests and gradient boosting, alone or at the end
  of a Pipeline): path-dependent by default, interventional against the background set when
  the manifest's ``tree_shap`` says so.
- ``linear``: exact linear SHAP with ``shap.LinearExplainer`` (interventional, against the
  background set) for a linear classifier, alone or after a Pipeline's encoding.
- ``sampling``: ``shap.PermutationExplainer`` with a fixed seed, for any other model.

Every explainer answers per model column (the manifest's ``model_columns``); a Pipeline's
encoded columns are summed back to the column they came from, which is exact for TreeSHAP
and linear SHAP (SHAP values are additive over columns).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from expound.errors import ModelIntegrityError
from expound.models.explainer import Explainer, RawAttribution
from expound.models.registry import LoadedModel
from expound.models.scoring import SklearnModel

# How far shap's copy of a model's trees may be from the library's own output on a
# background row: float64 sums of the same leaves in another order differ by ~1e-16.
TREE_OUTPUT_TOLERANCE = 1e-9


def _encoded_column_sources(
    transformer: Any, input_names: list[str] | None
) -> npt.NDArray[np.intp] | None:
    """Maps each output column of a Pipeline's encoding to its input column (None when the
    encoding is not a ColumnTransformer of per-column steps, or there is no encoding)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    if transformer is None:
        return None
    last = transformer.steps[-1][1] if hasattr(transformer, "steps") else transformer
    if not isinstance(last, ColumnTransformer):
        return None
    sources: list[int] = []
    for _name, step, columns in last.transformers_:
        if step == "drop" or len(columns) == 0:
            continue
        indices = [
            input_names.index(c) if isinstance(c, str) and input_names else int(c) for c in columns
        ]
        if isinstance(step, OneHotEncoder):
            dropped = step.drop_idx_ if step.drop_idx_ is not None else [None] * len(indices)
            for column, categories, drop in zip(indices, step.categories_, dropped, strict=True):
                sources.extend([column] * (len(categories) - (drop is not None)))
        else:
            sources.extend(indices)
    return np.asarray(sources, dtype=np.intp)


def _sum_back(values: npt.NDArray[np.float64], sources: npt.NDArray[np.intp] | None, n: int) -> Any:
    if sources is None:
        return values
    summed = np.zeros(n, dtype=np.float64)
    np.add.at(summed, sources, values)
    return summed


def _one_output(values: Any, output: int) -> npt.NDArray[np.float64]:
    """One row's SHAP values for the score's output (multi-output models give one set
    per class)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 3:
        array = array[..., output]
    return np.asarray(array[0], dtype=np.float64)


def _base_value(expected: Any, output: int) -> float:
    flat = np.asarray(expected, dtype=np.float64).reshape(-1)
    return float(flat[output] if flat.size > 1 else flat[0])


class TreeExplainer:
    """Exact TreeSHAP through ``shap.TreeExplainer``, for every tree kind."""

    def __init__(self, model: LoadedModel) -> None:
        import shap

        scorer = model.scorer
        manifest = model.manifest
        self._scorer = scorer
        self._transform = getattr(scorer, "transform", None)
        self._plain_rows = isinstance(scorer, SklearnModel) and self._transform is None
        self._output = manifest.score.output
        self._n_columns = len(manifest.model_columns())
        self._sources = _encoded_column_sources(
            getattr(scorer, "pipeline", None)[:-1] if self._transform else None,  # type: ignore[index]
            scorer.feature_names,
        )
        tree_model = getattr(scorer, "estimator", None)
        if tree_model is None:
            raise ModelIntegrityError(f"model {manifest.model_id}: a {scorer.kind} has no trees")
        # shap's interventional walker reads its background and rows as arrays, never the
        # DMatrix XGBoost predicts on ("Unsupported masker type"): it gets the rows as they
        # are, and the library's own output still comes from the DMatrix.
        self._arrays_for_shap = manifest.tree_shap == "interventional" and scorer.kind == "xgboost"
        if manifest.tree_shap == "interventional":
            data = self._shap_input(model.background, self._prepared(model.background))
            self._explainer = shap.TreeExplainer(
                tree_model, data=data, feature_perturbation="interventional", model_output="raw"
            )
            self.algorithm = "treeshap-interventional"
            self.background_sha256 = manifest.background_sha256
        else:
            self._explainer = shap.TreeExplainer(
                tree_model, feature_perturbation="tree_path_dependent"
            )
            self.algorithm = "treeshap-path-dependent"
            # Path-dependent TreeSHAP takes its reference distribution from the trees' own
            # cover counts (part of the artifact, hashed in the record), not a background.
            self.background_sha256 = ""
        self.sampling_seed = 0
        self.library_version = f"{scorer.library_version}; shap {shap.__version__}"
        # shap walks scikit-learn trees with its own copy of them ("internal"); the
        # boosters' TreeSHAP runs in their own libraries, which give their own output.
        self._tree_output = self._explainer.model.model_type == "internal"
        if self._tree_output:
            self._check_tree_output(model)
        if manifest.tree_shap == "interventional":
            self._check_adds_up(model)

    def _check_tree_output(self, model: LoadedModel) -> None:
        # The model output for the additivity check and the decision is read from shap's
        # copy of the trees in the same pass as the SHAP values (C code, one row: about
        # 20 us where a forest's own predict_proba costs 1 ms), so that copy must give the
        # library's own output: checked here on every background row to 1e-9, and a model
        # whose copy disagrees anywhere is refused.
        ours = self._tree_predict(self._prepared(model.background))
        library = np.asarray(self._scorer.raw(model.background), dtype=np.float64).reshape(-1)
        worst = float(np.max(np.abs(ours - library))) if len(library) else 0.0
        if not worst <= TREE_OUTPUT_TOLERANCE:
            raise ModelIntegrityError(
                f"model directory {model.directory}: explainer: shap's reading of this "
                f"{model.manifest.kind} model's trees does not give the model's own output "
                f"(largest difference {worst:.3g} over the background rows)"
            )

    def _tree_predict(self, prepared: Any) -> npt.NDArray[np.float64]:
        """The score's output for prepared rows through shap's copy of the trees."""
        predicted = np.asarray(self._explainer.model.predict(prepared), dtype=np.float64)
        columns = predicted.reshape(len(predicted), -1)
        return columns[:, self._output if columns.shape[1] > 1 else 0]

    def _check_adds_up(self, model: LoadedModel) -> None:
        # shap's own tree walker (used for interventional TreeSHAP) does not read every
        # split kind, LightGBM's categorical splits among them; such a model gives values
        # that do not add up, which is refused here at load rather than at every request.
        row = model.background[:1]
        raw = self.explain_row(row)
        residual = (
            raw.base_value + float(np.sum(raw.contributions)) - float(self._scorer.raw(row)[0])
        )
        if not abs(residual) <= 1e-6:
            raise ModelIntegrityError(
                f"model directory {model.directory}: tree_shap: interventional TreeSHAP does "
                f"not add up for this model (residual {residual:.3g}); use path_dependent"
            )

    def _prepared(self, rows: npt.NDArray[Any]) -> Any:
        if self._plain_rows:
            # shap reads a scikit-learn model's data frame as its values: skip building one.
            return np.asarray(rows, dtype=np.float64)
        data = self._scorer.model_input(rows)
        return self._transform(data) if self._transform is not None else data

    def _shap_input(self, rows: npt.NDArray[Any], prepared: Any) -> Any:
        """What shap explains: the prepared input, or the rows as floats where shap's
        walker cannot read the library's input type."""
        return np.asarray(rows, dtype=np.float64) if self._arrays_for_shap else prepared

    def explain_row(self, row: npt.NDArray[Any]) -> RawAttribution:
        # check_additivity is off because expound checks additivity itself, against the
        # model's output, on every request (base.attribute); from_call only silences
        # shap's notice that LightGBM binary output "has changed" (it has not, for one row).
        prepared = self._prepared(row)
        values = self._explainer.shap_values(
            self._shap_input(row, prepared), check_additivity=False, from_call=True
        )
        contributions = _sum_back(_one_output(values, self._output), self._sources, self._n_columns)
        return RawAttribution(
            contributions=contributions,
            base_value=_base_value(self._explainer.expected_value, self._output),
            model_output=self._model_output(prepared),
        )

    def _model_output(self, prepared: Any) -> float | None:
        if self._tree_output:
            return float(self._tree_predict(prepared)[0])
        if self._transform is None:
            # The library's own output on the input built once for both calls (an XGBoost
            # DMatrix or a CatBoost Pool costs as much to build as to predict one row).
            return float(self._scorer.raw_input(prepared)[0])
        return None


class LinearExplainer:
    """Exact linear SHAP over a linear classifier (after a Pipeline's encoding, if any)."""

    algorithm = "linear-shap-interventional"
    sampling_seed = 0

    def __init__(self, scorer: SklearnModel, background: npt.NDArray[Any], sha256: str) -> None:
        import shap

        self._scorer = scorer
        self._transform = scorer.transform
        classifier = scorer.estimator
        self._sources = _encoded_column_sources(
            scorer.pipeline[:-1] if self._transform else None, scorer.feature_names
        )
        encoded_background = self._prepared(background)
        self._explainer = shap.LinearExplainer(
            (classifier.coef_[0], classifier.intercept_[0]),
            shap.maskers.Independent(encoded_background, max_samples=len(encoded_background)),
        )
        self._n_columns = background.shape[1]
        self.library_version = f"shap {shap.__version__}; {scorer.library_version}"
        self.background_sha256 = sha256

    def _prepared(self, rows: npt.NDArray[Any]) -> Any:
        data = self._scorer.model_input(rows)
        encoded = self._transform(data) if self._transform is not None else data
        return np.asarray(encoded, dtype=np.float64)

    def explain_row(self, row: npt.NDArray[Any]) -> RawAttribution:
        values = np.asarray(self._explainer.shap_values(self._prepared(row)), dtype=np.float64)
        contributions = _sum_back(values[0], self._sources, self._n_columns)
        return RawAttribution(
            contributions=contributions,
            base_value=_base_value(self._explainer.expected_value, 0),
        )


class SamplingExplainer:
    """Seeded permutation SHAP for models with no exact algorithm."""

    algorithm = "permutation-sampling"

    def __init__(
        self, model: LoadedModel, background_sha256: str, sampling_seed: int, max_evals: int
    ) -> None:
        import shap

        self._raw = model.scorer.raw
        self._masker = shap.maskers.Independent(model.background, max_samples=len(model.background))
        self._max_evals = max_evals
        self.sampling_seed = sampling_seed
        self.library_version = f"shap {shap.__version__}; {model.scorer.library_version}"
        self.background_sha256 = background_sha256

    def explain_row(self, row: npt.NDArray[Any]) -> RawAttribution:
        import shap

        # A fresh explainer per row, seeded: the same row always gets the same values,
        # whatever was explained before it.
        explainer = shap.PermutationExplainer(self._raw, self._masker, seed=self.sampling_seed)
        result = explainer(row, max_evals=self._max_evals, silent=True)
        return RawAttribution(
            contributions=np.asarray(result.values[0], dtype=np.float64),
            base_value=float(np.asarray(result.base_values).reshape(-1)[0]),
        )


def build_explainer(model: LoadedModel, algorithm: str | None = None) -> Explainer:
    """Builds the explainer the manifest names (or ``algorithm``, to override it)."""
    manifest = model.manifest
    chosen = algorithm or manifest.explainer
    if chosen == "tree":
        try:
            return TreeExplainer(model)
        except Exception as exc:  # shap says "Model type not yet supported" and the like
            raise ModelIntegrityError(
                f"model directory {model.directory}: explainer: 'tree' does not apply to this "
                f"{manifest.kind} model ({exc})"
            ) from exc
    scorer = model.scorer
    if (
        chosen == "linear"
        and isinstance(scorer, SklearnModel)
        and hasattr(scorer.estimator, "coef_")
    ):
        return LinearExplainer(scorer, model.background, manifest.background_sha256)
    if chosen == "sampling":
        return SamplingExplainer(
            model, manifest.background_sha256, manifest.sampling_seed, manifest.sampling_evaluations
        )
    raise ModelIntegrityError(
        f"model directory {model.directory}: explainer: {chosen!r} does not apply to a "
        f"{manifest.kind} model"
    )
