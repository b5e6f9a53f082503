"""Ranking arithmetic shared by every ranker: the gate first, then component scores.

A draft that fails verification never ranks above one that passes and is never selected.
Passing drafts are ordered by a weighted sum of component scores, each in [0, 1]:

- relevance: the second model's judgement (sentence-embedding similarity or a rubric
  judge LLM), supplied by the ranker;
- fluency: the drafting model's own mean per-token likelihood, exp(mean log-prob);
- completeness: coverage of the decision's reasons, weighted by |contribution|;
- conciseness: words per feature mentioned, against an audience's target.

Weights are per audience (settings); every component score is returned and archived.

Before the weighted sum comes the style fit (:mod:`expound.rankers.routing`): candidates
drafted from different plan styles are ordered by how well their style answers the
question for the audience, so the selected text follows the routing whenever a candidate
of the routed style passed the gate; the weighted sum orders candidates of one style (and
every free-mode candidate, which has none). The question decides the plan, the second
model the wording.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Mapping

from expound.explainers.facts import DecisionFacts
from expound.llm.draft import Draft
from expound.rankers.base import RankedDraft
from expound.rankers.gate import Verdict, verify_candidate
from expound.rankers.routing import style_fit

COMPONENTS = ("relevance", "fluency", "completeness", "conciseness")
DEFAULT_WEIGHTS: dict[str, dict[str, float]] = {
    "APPLICANT": {"relevance": 0.35, "fluency": 0.2, "completeness": 0.3, "conciseness": 0.15},
    "ANALYST": {"relevance": 0.25, "fluency": 0.15, "completeness": 0.45, "conciseness": 0.15},
    "COMPLIANCE": {"relevance": 0.2, "fluency": 0.1, "completeness": 0.6, "conciseness": 0.1},
}
WORDS_PER_FEATURE_TARGET = {"APPLICANT": 22.0, "ANALYST": 16.0, "COMPLIANCE": 14.0}
NAME = "scoring/v1"

Weights = Mapping[str, Mapping[str, float]]


class Abandoned(Exception):
    """The caller went away while its drafts were being ranked; the ranking stopped."""


async def rank_off_loop(
    facts: DecisionFacts,
    drafts: list[Draft],
    relevance: Callable[[list[str]], list[float]],
    weights: Weights,
) -> list[RankedDraft]:
    """:func:`rank_drafts` in a worker thread that stops when the awaiting call is cancelled.

    A thread cannot be killed: when the caller goes away (the call's task is cancelled),
    the thread is told to stop and gives up at its next check, between one draft's
    verification and the next and before the second model runs, instead of verifying and
    embedding drafts nobody will read.
    """
    stop = threading.Event()
    try:
        return await asyncio.to_thread(rank_drafts, facts, drafts, relevance, weights, stop)
    except asyncio.CancelledError:
        stop.set()
        raise


def audience_weights(overrides: Weights | None = None) -> dict[str, dict[str, float]]:
    """The default weights per audience with ``overrides`` (from settings) filled in."""
    overrides = overrides or {}
    return {k: {**v, **overrides.get(k, {})} for k, v in DEFAULT_WEIGHTS.items()}


def rank_drafts(
    facts: DecisionFacts,
    drafts: list[Draft],
    relevance: Callable[[list[str]], list[float]],
    weights: Weights,
    stop: threading.Event | None = None,
) -> list[RankedDraft]:
    """Gates, scores and orders ``drafts`` (sync, CPU-bound).

    Args:
        facts: the decision the drafts explain.
        drafts: the drafts to rank.
        relevance: the second model: one score in [0, 1] per draft text.
        weights: component weights per audience.
        stop: when set (the caller went away), the ranking stops at its next check.

    Raises:
        Abandoned: ``stop`` was set before the ranking finished.
    """
    if not drafts:
        return []
    started = time.perf_counter()
    verdicts = []
    for draft in drafts:
        _check(stop)
        verdicts.append(verify_candidate(facts, draft.text))
    _check(stop)
    relevant_scores = relevance([d.text for d in drafts])
    audience = facts.audience.value
    weight = weights[audience]
    scored = []
    for draft, verdict, relevant in zip(drafts, verdicts, relevant_scores, strict=True):
        components = {
            "relevance": relevant,
            "fluency": _fluency(draft),
            "completeness": verdict.coverage,
            "conciseness": _conciseness(verdict, WORDS_PER_FEATURE_TARGET[audience]),
        }
        total = sum(weight[name] * components[name] for name in COMPONENTS)
        components["faithfulness"] = 1.0 if verdict.passed else 0.0
        components["style_fit"] = style_fit(facts, draft.style) if draft.style else 0.0
        components["total"] = total
        scored.append((draft, verdict, components))
    scored.sort(
        key=lambda item: (
            not item[1].passed,
            -item[2]["style_fit"],
            -item[2]["total"],
            item[0].index,
        )
    )
    elapsed = (time.perf_counter() - started) * 1000
    return [
        RankedDraft(draft, verdict, {**components, "ranking_ms": elapsed}, rank)
        for rank, (draft, verdict, components) in enumerate(scored, start=1)
    ]


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise Abandoned("the caller went away; ranking stopped")


def _fluency(draft: Draft) -> float:
    mean = draft.mean_logprob
    return 0.5 if mean is None else float(math.exp(max(mean, -20.0)))


def _conciseness(verdict: Verdict, target: float) -> float:
    per_feature = verdict.words / max(1, len(verdict.mentioned))
    return float(min(1.0, target / per_feature)) if per_feature > 0 else 0.0
