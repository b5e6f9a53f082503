"""What every explainer shares: additivity and ranking.

An explainer (:class:`expound.models.explainer.Explainer`) turns one encoded row into
per-feature SHAP contributions and a base value, in the model's raw units.
:func:`attribute` then checks additivity against the model's own output (a violation is
an error, never a silent pass) and ranks the features.
"""

from __future__ import annotations

import numpy as np

from expound.domain import Attributions, FeatureAttribution, FeatureScalar
from expound.errors import AttributionError
from expound.models.encoding import column_owners
from expound.models.explainer import Explainer
from expound.models.registry import LoadedModel


def attribute(
    model: LoadedModel,
    explainer: Explainer,
    features: dict[str, FeatureScalar],
    tolerance: float,
) -> Attributions:
    """Explains one validated row and checks base + sum(contributions) == model output.

    Raises:
        AttributionError: the explainer failed or additivity is violated beyond tolerance.
    """
    row = model.encode(features)
    try:
        raw = explainer.explain_row(row)
    except Exception as exc:  # foreign library errors are translated here, at the boundary
        raise AttributionError(f"{explainer.algorithm} failed: {type(exc).__name__}") from exc
    # The explainer gives the output when it has the row in hand: the library's own on the
    # input it built for its call, or shap's copy of the trees (checked equal to the
    # library's on every background row at load); otherwise the library computes it here.
    model_output = (
        raw.model_output if raw.model_output is not None else float(model.scorer.raw(row)[0])
    )
    residual = raw.base_value + float(np.sum(raw.contributions)) - model_output
    tolerance = max(tolerance, model.scorer.output_precision)
    if not np.isfinite(residual) or abs(residual) > tolerance:
        raise AttributionError(
            f"additivity violated: base + contributions - output = {residual:.3g} "
            f"(tolerance {tolerance:g}, {explainer.algorithm})"
        )
    specs = model.manifest.features
    # One attribution per feature: a one-hot group's columns add up to its one value.
    per_feature = np.zeros(len(specs), dtype=np.float64)
    owners = column_owners(specs, model.manifest.model_columns())
    np.add.at(per_feature, owners, raw.contributions)
    order = sorted(range(len(specs)), key=lambda j: (-abs(float(per_feature[j])), j))
    rank_of = {j: rank for rank, j in enumerate(order, start=1)}
    items = [
        FeatureAttribution(
            feature=specs[j].name,
            description=specs[j].description,
            value=features[specs[j].name],
            contribution=float(per_feature[j]),
            rank=rank_of[j],
        )
        for j in order
    ]
    return Attributions(
        items=items,
        base_value=raw.base_value,
        model_output=model_output,
        units=model.manifest.units,
        algorithm=explainer.algorithm,
        library_version=explainer.library_version,
        background_sha256=explainer.background_sha256,
        sampling_seed=explainer.sampling_seed,
        additivity_residual=residual,
    )
