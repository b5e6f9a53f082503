"""Builds the facts of a decision the way the pipeline does, for verifier and ranker tests."""

from __future__ import annotations

from typing import Any

from expound.domain import Audience
from expound.explainers.decision import decide
from expound.explainers.facts import DecisionFacts, decision_facts
from expound.explainers.plan import plan_decision
from expound.models.registry import ModelRegistry
from expound.rankers.gate import ViolationKind, verify


def facts_for(
    registry: ModelRegistry,
    model_id: str,
    applicant: dict[str, Any],
    audience: Audience = Audience.APPLICANT,
    question: str = "",
) -> DecisionFacts:
    model = registry.get(model_id)
    decision = decide(model, applicant, additivity_tolerance=1e-6)
    plan = plan_decision(model, applicant, decision, audience)
    return decision_facts(model.manifest, decision, audience, question, plan)


def violation_kinds(facts: DecisionFacts, text: str) -> set[ViolationKind]:
    """The kinds of violation the gate finds in ``text`` about these facts."""
    return {v.kind for v in verify(facts, text).violations}
