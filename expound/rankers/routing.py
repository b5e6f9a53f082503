"""Question routing: which plan style answers the reader's question first.

The candidates of one decision follow different plans (:data:`STYLES`); the question and
the audience decide which one the ranker puts first. The table is reviewed data
(``routing.v1.json``, its sha256 recorded like the phrase banks'); this module only reads
it. A candidate's style-fit score is its style's place in the preference order, so the
selected candidate follows the routing whenever a candidate of the routed style is
faithful.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.rankers.reading import feature_terms, find_mentions

# The plan styles, in the order a tie is broken (the first is every audience's fallback).
STYLES = ("contrastive", "recourse_first", "compact", "question_first")


@dataclass(frozen=True)
class Route:
    """The style a question routes to, and why."""

    style: str
    rule: str  # "phrase: <phrase>" or "audience default"


@cache
def routing_table() -> dict[str, Any]:
    """The reviewed routing table (rankers/routing.v1.json) with its sha256."""
    text = resources.files("expound.rankers").joinpath("routing.v1.json").read_text()
    table: dict[str, Any] = json.loads(text)
    table["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    unknown = {rule["style"] for rule in table["rules"]} - set(STYLES)
    unknown |= set(table["audience_default"].values()) - set(STYLES)
    if unknown:
        raise ValueError(f"routing table names unknown styles: {sorted(unknown)}")
    return table


def route(question: str, audience: Audience, names_factor: bool = False) -> Route:
    """The style ``question`` asks for (the audience's default when no rule matches).

    Args:
        question: the reader's question as sent.
        audience: who reads the answer.
        names_factor: whether the question names a factor of the decision's plan.
    """
    lowered = " ".join(question.lower().split())
    table = routing_table()
    for rule in table["rules"]:
        if rule.get("names_factor") and not names_factor:
            continue
        for phrase in rule["phrases"]:
            if phrase in lowered:
                return Route(rule["style"], f"phrase: {phrase}")
    return Route(table["audience_default"][audience.value], "audience default")


def asked_factors(facts: DecisionFacts) -> list[str]:
    """The plan's factors the question names, in the order it names them."""
    if facts.plan is None or not facts.question.strip():
        return []
    planned = {p.feature for p in facts.plan.factors}
    question = facts.question.lower().replace("_", " ")
    named = [m.feature for m in find_mentions(question, feature_terms(facts))]
    return [f for f in dict.fromkeys(named) if f in planned]


def available_styles(facts: DecisionFacts) -> list[str]:
    """The styles this decision can be written in: recourse first needs an adverse
    decision with a verified counterfactual; question first a question naming a factor."""
    plan = facts.plan
    recourse = plan.recourse if plan is not None else None
    verified = recourse is not None and any(c.flips for c in recourse.counterfactuals)
    out = []
    for style in STYLES:
        if style == "recourse_first" and not (facts.prediction.adverse and verified):
            continue
        if style == "question_first" and not asked_factors(facts):
            continue
        out.append(style)
    return out


def preferred_styles(facts: DecisionFacts) -> list[str]:
    """The available styles, best fit for the question and audience first: the routed
    style, then the audience's default, then the rest in :data:`STYLES` order."""
    available = available_styles(facts)
    routed = route(facts.question, facts.audience, bool(asked_factors(facts))).style
    default = routing_table()["audience_default"][facts.audience.value]
    order = [s for s in (routed, default) if s in available]
    return list(dict.fromkeys([*order, *available]))


def style_fit(facts: DecisionFacts, style: str) -> float:
    """A candidate's fit in [0, 1]: 1 for the routed style, less down the preference
    order, 0 for a style the decision cannot take or a candidate with none (free mode)."""
    order = preferred_styles(facts)
    if style not in order:
        return 0.0
    return 1.0 - order.index(style) / len(order)
