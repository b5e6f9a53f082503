"""Builds the facts of a decision the way the pipeline does, for verifier and ranker tests."""

from __future__ import annotations

from functools import cache
from typing import Any

from expound.domain import Audience
from expound.explainers.algorithms import build_explainer
from expound.explainers.base import Explainer, attribute
from expound.explainers.facts import DecisionFacts, decision_facts
from expound.explainers.reasons import predict, principal_reasons
from expound.models.registry import ModelRegistry


@cache
def _explainer(registry: ModelRegistry, model_id: str) -> Explainer:
    return build_explainer(registry.get(model_id))


def facts_for(
    registry: ModelRegistry,
    model_id: str,
    applicant: dict[str, Any],
    audience: Audience = Audience.APPLICANT,
    question: str = "",
) -> DecisionFacts:
    model = registry.get(model_id)
    attributions = attribute(model, _explainer(registry, model_id), applicant, tolerance=1e-6)
    prediction = predict(model.manifest, attributions.model_output)
    reasons = principal_reasons(model.manifest, attributions, prediction)
    return decision_facts(model.manifest, prediction, attributions, reasons, audience, question)
