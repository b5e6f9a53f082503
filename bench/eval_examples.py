"""``bench/results/examples.md``: selected texts of ``make eval`` with their decision tables.

Ten per audience, taken in the eval's fixed order in turn from each model of the run (so an
imported model appears beside the demo ones), each with the question asked, the
style selected, whether it is the deterministic fallback, and the table the text must be
faithful to: every top feature's value, contribution and direction, and its place in the
content plan.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts

PER_AUDIENCE = 10
TABLE_ROWS = 6
MODE_WORDS = {
    "constrained": "drafted by the LLM under the plan styles' grammars",
    "free": "drafted freely by the LLM",
    "samples": (
        "no LLM: one random string of each plan style's grammar per candidate (the "
        "model's choices among true phrasings replaced by chance), ranked by the ranker"
    ),
    "off": "drafting off: every answer is the deterministic text",
}


def _table(facts: DecisionFacts) -> list[str]:
    plan = facts.plan
    planned = {p.feature: p for p in plan.factors} if plan is not None else {}
    rows = sorted(facts.factors.values(), key=lambda f: f.rank)[:TABLE_ROWS]
    lines = [
        "| rank | feature | value | contribution | direction | plan |",
        "|---:|---|---|---:|---|---|",
    ]
    for factor in rows:
        place = planned.get(factor.feature)
        role = "" if place is None else f"{place.role}, {place.share_words or 'under a tenth'}"
        protected = " (protected)" if facts.manifest.feature(factor.feature).protected else ""
        lines.append(
            f"| {factor.rank} | {factor.feature}{protected} | {factor.value_text} | "
            f"{factor.contribution:+.3f} | {'raises risk' if factor.raises_risk else 'lowers risk'}"
            f" | {role} |"
        )
    return lines


def _recourse(facts: DecisionFacts) -> str:
    plan = facts.plan
    if plan is None or plan.recourse is None:
        return "none searched (not adverse)"
    flips = [c for c in plan.recourse.counterfactuals if c.flips]
    if not flips:
        return "none found" + (" (exhaustive)" if plan.recourse.exhaustive else "")
    first = flips[0]
    changes = ", ".join(f"{c.feature} {c.before} -> {c.after}" for c in first.changes)
    return f"{changes} (re-scored {first.score:.3f})"


def _in_turn(
    pairs: list[tuple[dict[str, Any], DecisionFacts]], count: int
) -> list[tuple[dict[str, Any], DecisionFacts]]:
    """Up to ``count`` runs, one model after the other in the order they appear, each
    model's in their own order."""
    queues: dict[str, list[tuple[dict[str, Any], DecisionFacts]]] = {}
    for pair in pairs:
        queues.setdefault(pair[1].model_id, []).append(pair)
    chosen: list[tuple[dict[str, Any], DecisionFacts]] = []
    while len(chosen) < count and any(queues.values()):
        for queue in queues.values():
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return chosen


def examples_markdown(
    mode: str, runs: Sequence[dict[str, Any]], facts_of: Sequence[DecisionFacts]
) -> str:
    """The examples page for the runs of one mode (``facts_of[i]`` is run i's decision)."""
    models = list(dict.fromkeys(facts.model_id for facts in facts_of))
    lines = [
        "# Selected explanations from `make eval`",
        "",
        f"Written by `bench/eval.py` from the `{mode}` run ({MODE_WORDS.get(mode, mode)}): "
        f"the first {PER_AUDIENCE} "
        "decisions of each audience in the eval's fixed order (seeded shuffle of the demo "
        f"applicants), in turn from each model of the run ({', '.join(models)}). Each text "
        "is the service's answer: the top faithful candidate, or the deterministic text on "
        "fallback. The table is what it must be faithful to (top features by |contribution|).",
        "",
    ]
    for audience in Audience:
        chosen = _in_turn(
            [
                (run, facts)
                for run, facts in zip(runs, facts_of, strict=True)
                if run["audience"] == audience.value
            ],
            PER_AUDIENCE,
        )
        lines += [f"## {audience.value.lower()}", ""]
        for number, (run, facts) in enumerate(chosen, start=1):
            selected = run["selected"]
            prediction = facts.prediction
            source = (
                f"deterministic fallback ({run['fallback_reason']})"
                if run["fallback_reason"]
                else f"drafted, style {run.get('selected_style') or 'n/a'}"
            )
            lines += [
                f"### {audience.value.lower()} {number}: {facts.model_id}, "
                f"{prediction.decision} (score {prediction.score:.3f}, threshold "
                f"{prediction.threshold:.2f})",
                "",
                f"Question: {json.dumps(run.get('question') or '')}. Selected: {source}. "
                f"{selected['words']} words, repeated openers: "
                f"{', '.join(selected['repeated_openers']) or 'none'}, gate: "
                f"{'passed' if selected['passed'] else 'FAILED'}.",
                "",
                *[f"> {line}" for line in [selected["text"]]],
                "",
                *_table(facts),
                "",
                f"Recourse: {_recourse(facts)}.",
                "",
            ]
    return "\n".join(lines)
