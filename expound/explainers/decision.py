"""The decision chain, written once: attribute -> predict -> principal reasons.

The pipeline, the tests and the benchmarks all decide through :func:`decide`, so what they
measure and check is what the service answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from expound.domain import Attributions, FeatureScalar, Prediction, PrincipalReason
from expound.explainers.base import attribute
from expound.explainers.reasons import predict, principal_reasons
from expound.models.registry import ServedModel


@dataclass(frozen=True)
class Decision:
    """The deterministic, legally operative part of one decision.

    ``timings_ms`` holds the time of its two steps, ``attribute`` (SHAP, additivity,
    ranking) and ``reasons`` (prediction and principal reasons).
    """

    prediction: Prediction
    attributions: Attributions
    principal_reasons: list[PrincipalReason]
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)


def decide(
    model: ServedModel, features: dict[str, FeatureScalar], additivity_tolerance: float
) -> Decision:
    """Explains one validated row with the model's explainer and derives the decision.

    Sync and CPU-bound: the pipeline runs it off the event loop.

    Raises:
        AttributionError: the explainer failed or additivity is violated beyond tolerance.
    """
    started = time.perf_counter()
    attributions = attribute(model, model.explainer, features, additivity_tolerance)
    mark = time.perf_counter()
    prediction = predict(model.manifest, attributions.model_output)
    reasons = principal_reasons(model.manifest, attributions, prediction)
    done = time.perf_counter()
    return Decision(
        prediction=prediction,
        attributions=attributions,
        principal_reasons=reasons,
        timings_ms={"attribute": (mark - started) * 1000, "reasons": (done - mark) * 1000},
    )
