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

Base models over the completions API (:func:`free_prompt`) continue a few-shot prompt
(``free.v2``): the rules, then one worked example for the call's audience, then the
decision's facts. A base model writes in the voice and wording of the example it is
shown, so each audience has its own, taken from a real decision of the demo model and
worded only as the gate reads: the applicant's speaks to "you"; the analyst's (score,
threshold, contributions) and the compliance officer's (principal reasons with their
codes, in the neutral wording) speak of "the applicant".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from expound.domain import Audience, Prediction
from expound.explainers.facts import DecisionFacts, Factor
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
# The few-shot prompt free drafting over completions continues. free.v1 (one applicant
# example, shown to every audience) stays loadable by name for the records that name it.
FREE_TEMPLATE = "free.v2"


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


def _json_template(name: str) -> PromptTemplate:
    text = resources.files("expound.generators").joinpath("templates", f"{name}.json").read_text()
    return PromptTemplate(template_id=name, text=text)


@cache
def chat_template(name: str = CHAT_TEMPLATE) -> PromptTemplate:
    """Loads generators/templates/NAME.json: the chat instructions, as one versioned text."""
    return _json_template(name)


@cache
def free_template(name: str = FREE_TEMPLATE) -> PromptTemplate:
    """Loads generators/templates/NAME.json: the few-shot prompt with one example per
    audience, as one versioned text (its id and sha256 are what a record names)."""
    return _json_template(name)


def _data_json(payload: object) -> str:
    """JSON for a ``<data>`` block: no angle bracket can end it."""
    return json.dumps(payload, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")


def _quoted(text: str) -> str:
    """A JSON string literal: quotes, newlines and angle brackets cannot end the data block."""
    return json.dumps(text, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")


def _factor_line(factor: Factor) -> dict[str, str]:
    """A factor as prompt data: its description, its value and its effect in the words
    the gate reads."""
    return {
        "factor": factor.description,
        "value": factor.value_text,
        "effect": "raised the risk" if factor.raises_risk else "lowered the risk",
    }


def _carrying(facts: DecisionFacts) -> list[Factor]:
    """The factors that carry the decision, most important first (else the largest)."""
    return facts.ordered if facts.ordered else facts.top


def _factor_lines(facts: DecisionFacts) -> list[dict[str, str]]:
    return [_factor_line(f) for f in _carrying(facts)]


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


def _scored(prediction: Prediction) -> dict[str, str]:
    """The score and the threshold as staff data states them (and the gate reads them)."""
    return {"score": f"{prediction.score:.3f}", "threshold": f"{prediction.threshold:.2f}"}


def _principal_reasons(facts: DecisionFacts) -> list[str]:
    """Each principal reason with its code, in order, in the audience's wording."""
    return [f"{r.code}: {facts.reason_text(r)}" for r in facts.reasons]


def free_facts(facts: DecisionFacts) -> dict[str, object]:
    """The decision's facts as a free prompt's data, in the words the gate reads back.

    The applicant's are the factors that carry the decision (as ``free.v1`` gave them).
    Values are written without parentheses, as the chat data gives them.
    Analyst and compliance texts must name every factor of the content plan, so theirs
    are the plan's, both directions, largest first: for the analyst with each one's
    contribution and the score and threshold; for compliance after the principal reasons,
    codes first, in the third person.
    """
    staff = facts.audience is not Audience.APPLICANT
    if staff and facts.plan is not None:
        factors = [facts.factors[planned.feature] for planned in facts.plan.factors]
    else:
        factors = _carrying(facts)
    payload: dict[str, object] = {
        "decision": facts.prediction.decision,
        "audience": facts.audience.value,
    }
    analyst = facts.audience is Audience.ANALYST
    if analyst:
        payload |= _scored(facts.prediction)
    if facts.audience is Audience.COMPLIANCE and facts.reasons:
        payload["principal_reasons"] = _principal_reasons(facts)
    lines = []
    for factor in factors:
        # Values without parentheses: the texts put a value in parentheses after its factor.
        line = _factor_line(factor) | {"value": parenthesis_free(factor.value_text)}
        if analyst:
            line["contribution"] = f"{abs(factor.contribution):.3f}"
        lines.append(line)
    payload["factors"] = lines
    payload["question"] = facts.question[:MAX_PROMPT_QUESTION_CHARS]
    return payload


def free_prompt(facts: DecisionFacts) -> tuple[str, PromptTemplate]:
    """The few-shot prompt for free drafting over completions (``free.v2``): the rules
    and the worked example of the call's audience, then the facts as data.

    The example's data goes through the same serialisation as the facts, so the model
    sees one format twice.
    """
    chosen = free_template()
    parts = json.loads(chosen.text)
    audience = facts.audience.value
    example = parts["example"][audience]
    prompt = parts["prompt"].format(
        audience=parts["audience"][audience],
        example_json=_data_json(example["data"]),
        example=example["explanation"],
        facts_json=_data_json(free_facts(facts)),
    )
    return prompt, chosen


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
        payload |= _scored(prediction)
        payload["attributions"] = f"{plan.attribution_method} SHAP values"
    if facts.audience is Audience.COMPLIANCE and facts.reasons:
        payload["principal_reasons"] = _principal_reasons(facts)
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
