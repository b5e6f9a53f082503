"""Prompts for drafting, built only from structured facts; applicant data stays data.

Feature values and the reader's question are serialised as JSON strings inside a
``<data>`` block, so an injected instruction is a quoted string, not prompt text. The
template id and sha256 go into the record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from expound.explainers.facts import DecisionFacts

MAX_PROMPT_QUESTION_CHARS = 500


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
    facts_json = (
        json.dumps(payload, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")
    )
    return chosen.text.format(facts_json=facts_json), chosen
