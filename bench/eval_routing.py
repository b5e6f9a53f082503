"""The fixed question set of ``make eval`` (bench/eval_questions.json) and routing accuracy.

Each question carries the plan style a person reading it expects first. Two figures:

- table accuracy: the router (:func:`expound.rankers.routing.route`) on each question, for
  a decision where every style is available (so the expected style is always possible);
- end to end: the eval's decisions are asked these questions in turn; the selected text's
  style against the question's expected style, or the audience's default where the
  decision cannot take it (an approval has no recourse; a question naming a factor outside
  the plan has no factor-first answer).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.rankers.reading import feature_terms, find_mentions
from expound.rankers.routing import available_styles, route, routing_table

QUESTIONS = Path(__file__).resolve().parent / "eval_questions.json"


@cache
def question_set() -> list[dict[str, str]]:
    """The fixed questions: audience, question, expected style."""
    loaded: dict[str, Any] = json.loads(QUESTIONS.read_text())
    return list(loaded["questions"])


def question_for(audience: Audience, index: int) -> dict[str, str]:
    """The ``index``-th question of an audience's set, in turn."""
    own = [q for q in question_set() if q["audience"] == audience.value]
    return own[index % len(own)]


def expected_style(facts: DecisionFacts, wanted: str) -> str:
    """The style a decision's answer should take: ``wanted`` where the decision can take
    it, else the audience's default."""
    if wanted in available_styles(facts):
        return wanted
    return str(routing_table()["audience_default"][facts.audience.value])


def table_accuracy(facts: DecisionFacts) -> dict[str, Any]:
    """The router against the question set. ``facts`` gives the model's feature names (a
    question names a factor when it names one of them)."""
    terms = feature_terms(facts)
    misses = []
    for entry in question_set():
        question = entry["question"]
        names = bool(find_mentions(question.lower().replace("_", " "), terms))
        got = route(question, Audience(entry["audience"]), names).style
        if got != entry["style"]:
            misses.append(entry | {"routed": got})
    total = len(question_set())
    return {
        "questions": total,
        "accuracy": round(1 - len(misses) / total, 4),
        "misses": misses,
        "table": str(routing_table()["id"]),
        "table_sha256": str(routing_table()["sha256"]),
    }
