"""Ranking the drafts: the faithfulness gate first, then a second model's judgement.

A draft that fails verification never ranks above one that passes and is never selected.
Passing drafts are ordered by a weighted sum of component scores, each in [0, 1]:

- relevance: all-MiniLM-L6-v2 cosine similarity of the draft to the reader's question
  and to the principal reasons (the second model);
- fluency: the drafting model's own mean per-token likelihood, exp(mean log-prob);
- completeness: coverage of the decision's reasons, weighted by |contribution|;
- conciseness: words per feature mentioned, against an audience's target.

Weights are per audience (settings); every component score is returned and archived.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from expound.domain import Audience
from expound.errors import GeneratorError
from expound.explainers.facts import DecisionFacts
from expound.generators.base import Draft
from expound.rankers.embedding import Embedder
from expound.rankers.judge import RubricJudge
from expound.rankers.verify import Verdict, verify

COMPONENTS = ("relevance", "fluency", "completeness", "conciseness")
DEFAULT_WEIGHTS: dict[str, dict[str, float]] = {
    "APPLICANT": {"relevance": 0.35, "fluency": 0.2, "completeness": 0.3, "conciseness": 0.15},
    "ANALYST": {"relevance": 0.25, "fluency": 0.15, "completeness": 0.45, "conciseness": 0.15},
    "COMPLIANCE": {"relevance": 0.2, "fluency": 0.1, "completeness": 0.6, "conciseness": 0.1},
}
WORDS_PER_FEATURE_TARGET = {"APPLICANT": 22.0, "ANALYST": 16.0, "COMPLIANCE": 14.0}
DEFAULT_QUESTION = {
    Audience.APPLICANT: "Why was this decision made about my application, and what could I do?",
    Audience.ANALYST: "Which features drove the model's score, and by how much?",
    Audience.COMPLIANCE: "What are the principal reasons for this decision?",
}


@dataclass(frozen=True)
class RankedDraft:
    """A draft with its verdict, component scores and final rank (1 = best)."""

    draft: Draft
    verdict: Verdict
    scores: dict[str, float]
    rank: int


class ScoringRanker:
    """Verifies, scores and orders drafts; the second model judges relevance: sentence
    embeddings (``embedder``) by default, or a rubric judge LLM (``judge``)."""

    def __init__(
        self,
        embedder: Embedder | None,
        weights: Mapping[str, Mapping[str, float]] | None = None,
        judge: RubricJudge | None = None,
    ) -> None:
        if embedder is None and judge is None:
            raise ValueError("a ranker needs an embedder or a judge")
        self._embedder = embedder
        self._judge = judge
        self._weights = {k: dict(v) for k, v in (weights or DEFAULT_WEIGHTS).items()}
        second = judge.name if judge is not None else embedder.name  # type: ignore[union-attr]
        self.name = f"scoring/v1+{second}"

    async def rank(self, facts: DecisionFacts, drafts: list[Draft]) -> list[RankedDraft]:
        """Ranks ``drafts`` for ``facts``; CPU work runs off the event loop."""
        relevance = None
        if self._judge is not None and drafts:
            try:
                relevance = await self._judge.score(facts, [d.text for d in drafts])
            except GeneratorError:
                # No judge, no relevance signal: neutral scores; the gate still decides.
                relevance = [0.5] * len(drafts)
        return await asyncio.to_thread(self.rank_sync, facts, drafts, relevance)

    async def aclose(self) -> None:
        """Closes the judge's connections, if any."""
        if self._judge is not None:
            await self._judge.aclose()

    def rank_sync(
        self, facts: DecisionFacts, drafts: list[Draft], relevance: list[float] | None = None
    ) -> list[RankedDraft]:
        """The ranking itself (sync); ``relevance`` if already judged."""
        if not drafts:
            return []
        started = time.perf_counter()
        verdicts = [verify(facts, d.text) for d in drafts]
        if relevance is None:
            relevance = self._relevance(facts, [d.text for d in drafts])
        audience = facts.audience.value
        weights = self._weights[audience]
        scored = []
        for draft, verdict, relevant in zip(drafts, verdicts, relevance, strict=True):
            components = {
                "relevance": relevant,
                "fluency": _fluency(draft),
                "completeness": verdict.coverage,
                "conciseness": _conciseness(verdict, WORDS_PER_FEATURE_TARGET[audience]),
            }
            total = sum(weights[name] * components[name] for name in COMPONENTS)
            components["faithfulness"] = 1.0 if verdict.passed else 0.0
            components["total"] = total
            scored.append((draft, verdict, components))
        scored.sort(key=lambda item: (not item[1].passed, -item[2]["total"], item[0].index))
        elapsed = (time.perf_counter() - started) * 1000
        return [
            RankedDraft(draft, verdict, {**components, "ranking_ms": elapsed}, rank)
            for rank, (draft, verdict, components) in enumerate(scored, start=1)
        ]

    def _relevance(self, facts: DecisionFacts, texts: list[str]) -> list[float]:
        question = facts.question.strip() or DEFAULT_QUESTION[facts.audience]
        reasons = "; ".join(
            [r.text for r in facts.reasons] or [f.description for f in facts.ordered]
        )
        if self._embedder is None:
            raise ValueError("no embedder: relevance comes from the judge")
        vectors = self._embedder.embed([question, reasons or question, *texts])
        query, topic, candidates = vectors[0], vectors[1], vectors[2:]
        similarity = 0.5 * (candidates @ query) + 0.5 * (candidates @ topic)
        return [float(np.clip((s + 1.0) / 2.0, 0.0, 1.0)) for s in similarity]


def _fluency(draft: Draft) -> float:
    mean = draft.mean_logprob
    return 0.5 if mean is None else float(math.exp(max(mean, -20.0)))


def _conciseness(verdict: Verdict, target: float) -> float:
    per_feature = verdict.words / max(1, len(verdict.mentioned))
    return float(min(1.0, target / per_feature)) if per_feature > 0 else 0.0
