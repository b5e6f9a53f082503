"""Prompts for drafting, built only from structured facts; applicant data stays data.

Feature values and the reader's question are serialised as JSON strings inside a
``<data>`` block, so an injected instruction is a quoted string, not prompt text. The
template id and sha256 go into the record.

Instruct models over the chat API (:func:`chat_prompt`) get a system message built from
the decision's content plan and one plan style (the same styles the grammars follow,
:mod:`expound.generators.styles`), and the plan's facts as data in the user message.
Analysts and compliance officers read of the applicant in the third person: their
instructions say so (``chat.v2``) and their facts are worded so (reasons' neutral
wording, "the factors the applicant can act on").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.generators.base import ChatMessage
from expound.generators.deterministic import (
    base_rate_sentences,
    context_inline,
    counterfactual_sentence,
    no_recourse,
)
from expound.models.wording import parenthesis_free

MAX_PROMPT_QUESTION_CHARS = 500
# The chat instructions drafting uses. Earlier versions stay loadable by name: a record's
# template id keeps meaning what it meant (chat.v1 did not ask analyst and compliance
# texts for the third person).
CHAT_TEMPLATE = "chat.v2"


@dataclass(frozen=True)
class PromptTemplate:
    """A versioned prompt template."""

    template_id: str
    text: str

    @property
    def sha256(self) -> str:
        """sha256 of the template text."""
        return hashlib.sha256(self.text.encode()).hexdigest()


@cache
def template(name: str) -> PromptTemplate:
    """Loads generators/templates/NAME.txt."""
    text = resources.files("expound.generators").joinpath("templates", f"{name}.txt").read_text()
    return PromptTemplate(template_id=name, text=text)


@cache
def chat_template(name: str = CHAT_TEMPLATE) -> PromptTemplate:
    """Loads generators/templates/NAME.json: the chat instructions, as one versioned text."""
    text = resources.files("expound.generators").joinpath("templates", f"{name}.json").read_text()
    return PromptTemplate(template_id=name, text=text)


def _data_json(payload: object) -> str:
    """JSON for a ``<data>`` block: no angle bracket can end it."""
    return json.dumps(payload, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")


def _quoted(text: str) -> str:
    """A JSON string literal: quotes, newlines and angle brackets cannot end the data block."""
    return json.dumps(text, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")


def _factor_lines(facts: DecisionFacts) -> list[dict[str, str]]:
    factors = facts.ordered if facts.ordered else facts.top
    return [
        {
            "factor": f.description,
            "value": f.value_text,
            "effect": "raised the risk" if f.raises_risk else "lowered the risk",
        }
        for f in factors
    ]


def constrained_prompt(facts: DecisionFacts) -> tuple[str, PromptTemplate]:
    """The short prompt that precedes grammar-constrained drafting."""
    chosen = template("constrained.v1")
    reasons = "; ".join(_quoted(f"{r['factor']}: {r['value']}") for r in _factor_lines(facts))
    prompt = chosen.text.format(
        decision=facts.prediction.decision,
        audience=facts.audience.value,
        reasons=reasons,
        question=_quoted(facts.question[:MAX_PROMPT_QUESTION_CHARS]),
    )
    return prompt, chosen


def free_prompt(facts: DecisionFacts) -> tuple[str, PromptTemplate]:
    """The few-shot prompt for free drafting by a strong instruct model."""
    chosen = template("free.v1")
    payload = {
        "decision": facts.prediction.decision,
        "audience": facts.audience.value,
        "factors": _factor_lines(facts),
        "question": facts.question[:MAX_PROMPT_QUESTION_CHARS],
    }
    return chosen.text.format(facts_json=_data_json(payload)), chosen


def chat_facts(facts: DecisionFacts) -> dict[str, object]:
    """The content plan's facts as the chat prompt's data: the decision, the plan's factors
    in its order, each with value, effect and context in the words the gate reads back,
    and what the audience is told besides (score, reasons, method, base rate, recourse)."""
    plan = facts.plan
    if plan is None:
        raise ValueError("a chat prompt follows a content plan; the facts have none")
    prediction = facts.prediction
    analyst = facts.audience is Audience.ANALYST
    payload: dict[str, object] = {
        "decision": prediction.decision,
        "audience": facts.audience.value,
    }
    if facts.audience is not Audience.APPLICANT:
        payload["score"] = f"{prediction.score:.3f}"
        payload["threshold"] = f"{prediction.threshold:.2f}"
        payload["attributions"] = f"{plan.attribution_method} SHAP values"
    if facts.audience is Audience.COMPLIANCE and facts.reasons:
        payload["principal_reasons"] = [f"{r.code}: {facts.reason_text(r)}" for r in facts.reasons]
    factors = []
    for planned in plan.factors:
        factor = facts.factors[planned.feature]
        entry = {
            "factor": factor.description,
            "value": parenthesis_free(factor.value_text),
            "effect": "raised the risk" if planned.direction == "adverse" else "lowered the risk",
        }
        if analyst:
            entry["contribution"] = f"{abs(planned.contribution):.3f}"
        context = context_inline(facts, planned).lstrip(", ")
        if context:
            entry["context"] = context
        factors.append(entry)
    payload["factors"] = factors
    recourse = plan.recourse
    if prediction.adverse and recourse is not None and recourse.searched_features:
        verified = [c for c in recourse.counterfactuals if c.flips]
        if verified:
            payload["counterfactual"] = counterfactual_sentence(facts, verified[0])
        elif recourse.exhaustive and not recourse.counterfactuals:
            payload["counterfactual"] = no_recourse(facts.audience)
    if analyst and plan.reference is not None:
        payload["base_rate"] = " ".join(base_rate_sentences(plan))
    payload["question"] = facts.question[:MAX_PROMPT_QUESTION_CHARS]
    return payload


def chat_prompt(facts: DecisionFacts, style: str) -> tuple[tuple[ChatMessage, ...], PromptTemplate]:
    """The chat messages asking an instruct model for one explanation in ``style``.

    The system message says what to write (audience, plan style, rules); the user message
    holds the plan's facts as quoted JSON in a ``<data>`` block, never as instructions.

    Raises:
        ValueError: the facts have no content plan, or ``style`` is not a plan style.
    """
    chosen = chat_template()
    parts = json.loads(chosen.text)
    styles = parts["style"]
    if facts.audience is Audience.ANALYST:
        styles = {**styles, **parts["style_analyst"]}
    if style not in styles:
        raise ValueError(f"no chat instruction for plan style {style!r}")
    system = parts["system"].format(
        audience=parts["audience"][facts.audience.value], style=styles[style]
    )
    user = parts["user"].format(facts_json=_data_json(chat_facts(facts)))
    return (ChatMessage("system", system), ChatMessage("user", user)), chosen
