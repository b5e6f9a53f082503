"""The three SHAP algorithms expound runs, chosen explicitly per model by its manifest.

- ``tree``: exact TreeSHAP (path-dependent) through LightGBM's native ``pred_contrib``,
  the same call ``shap.TreeExplainer`` makes for LightGBM boosters.
- ``linear``: exact linear SHAP with ``shap.LinearExplainer`` over the pipeline's encoded
  columns (interventional, against the background set); one-hot columns are summed back
  to their original feature.
- ``sampling``: ``shap.PermutationExplainer`` with a fixed seed, for any other model.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from expound.errors import ModelIntegrityError
from expound.explainers.base import Explainer, FloatMatrix, RawAttribution
from expound.models.registry import LoadedModel
from expound.models.scoring import LightGBMModel, SklearnModel


class TreeExplainer:
    """Exact path-dependent TreeSHAP via LightGBM's native contribution call."""

    algorithm = "treeshap-path-dependent"
    seed = 0
    # Path-dependent TreeSHAP takes its reference distribution from the trees' own cover
    # counts (part of the artifact, hashed in the record); it uses no background set.
    background_sha256 = ""

    def __init__(self, scorer: LightGBMModel) -> None:
        self._booster = scorer.booster
        self.library_version = scorer.library_version

    def explain_row(self, row: FloatMatrix) -> RawAttribution:
        contrib = np.asarray(self._booster.predict(row, pred_contrib=True), dtype=np.float64)[0]
        return RawAttribution(contributions=contrib[:-1], base_value=float(contrib[-1]))


class LinearExplainer:
    """Exact linear SHAP over a one-hot/scaled pipeline, summed back per feature."""

    algorithm = "linear-shap-interventional"
    seed = 0

    def __init__(
        self, scorer: SklearnModel, background: FloatMatrix, background_sha256: str
    ) -> None:
        import shap

        encode = scorer.pipeline[:-1]
        classifier = scorer.pipeline[-1]
        self._encode = encode
        self._column_feature = _encoded_column_features(encode.steps[-1][1])
        encoded_background = encode.transform(background)
        self._explainer = shap.LinearExplainer(
            (classifier.coef_[0], classifier.intercept_[0]),
            shap.maskers.Independent(encoded_background, max_samples=len(encoded_background)),
        )
        self._n_features = background.shape[1]
        self.library_version = f"shap {shap.__version__}; {scorer.library_version}"
        self.background_sha256 = background_sha256

    def explain_row(self, row: FloatMatrix) -> RawAttribution:
        encoded = self._encode.transform(row)
        values = np.asarray(self._explainer.shap_values(encoded), dtype=np.float64)[0]
        contributions = np.zeros(self._n_features, dtype=np.float64)
        np.add.at(contributions, self._column_feature, values)
        expected = np.asarray(self._explainer.expected_value, dtype=np.float64).reshape(-1)
        return RawAttribution(contributions=contributions, base_value=float(expected[0]))


def _encoded_column_features(transformer: object) -> npt.NDArray[np.intp]:
    """Maps each output column of a fitted ColumnTransformer to its input feature index."""
    from sklearn.preprocessing import OneHotEncoder

    owners: list[int] = []
    for _name, step, columns in transformer.transformers_:  # type: ignore[attr-defined]
        if step == "drop" or len(columns) == 0:
            continue
        if isinstance(step, OneHotEncoder):
            for column, categories in zip(columns, step.categories_, strict=True):
                owners.extend([column] * len(categories))
        else:
            owners.extend(columns)
    return np.asarray(owners, dtype=np.intp)


class SamplingExplainer:
    """Seeded permutation SHAP for models with no exact algorithm."""

    algorithm = "permutation-sampling"

    def __init__(
        self, model: LoadedModel, background_sha256: str, seed: int, max_evals: int
    ) -> None:
        import shap

        self._raw = model.scorer.raw
        self._masker = shap.maskers.Independent(model.background, max_samples=len(model.background))
        self._max_evals = max_evals
        self.seed = seed
        self.library_version = f"shap {shap.__version__}; {model.scorer.library_version}"
        self.background_sha256 = background_sha256

    def explain_row(self, row: FloatMatrix) -> RawAttribution:
        import shap

        # A fresh explainer per row, seeded: the same row always gets the same values,
        # whatever was explained before it.
        explainer = shap.PermutationExplainer(self._raw, self._masker, seed=self.seed)
        result = explainer(row, max_evals=self._max_evals, silent=True)
        return RawAttribution(
            contributions=np.asarray(result.values[0], dtype=np.float64),
            base_value=float(np.asarray(result.base_values).reshape(-1)[0]),
        )


def build_explainer(model: LoadedModel, algorithm: str | None = None) -> Explainer:
    """Builds the explainer the manifest names (or ``algorithm``, to override it)."""
    manifest = model.manifest
    chosen = algorithm or manifest.explainer
    if chosen == "tree" and isinstance(model.scorer, LightGBMModel):
        return TreeExplainer(model.scorer)
    if chosen == "linear" and isinstance(model.scorer, SklearnModel):
        return LinearExplainer(model.scorer, model.background, manifest.background_sha256)
    if chosen == "sampling":
        return SamplingExplainer(
            model, manifest.background_sha256, manifest.sampling_seed, manifest.sampling_evaluations
        )
    raise ModelIntegrityError(
        f"model {manifest.model_id}: explainer {chosen!r} does not apply to a {manifest.kind} model"
    )
