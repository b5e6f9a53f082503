"""The ranking contract: drafts in, the same drafts ordered with their verdicts out.

Every ranker runs the faithfulness gate first (:mod:`expound.rankers.gate`) and scores
the drafts on the same components (:mod:`expound.rankers.scoring`); implementations
differ only in the second model that judges relevance: sentence embeddings
(:class:`expound.rankers.embedding.EmbeddingRanker`, the default) or a rubric judge LLM
(:class:`expound.rankers.judge.JudgeRanker`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from expound.explainers.facts import DecisionFacts
from expound.llm.draft import Draft
from expound.rankers.gate import Verdict


@dataclass(frozen=True)
class RankedDraft:
    """A draft with its verdict, component scores and final rank (1 = best)."""

    draft: Draft
    verdict: Verdict
    scores: dict[str, float]
    rank: int


class Ranker(Protocol):
    """Verifies, scores and orders the drafts of one decision."""

    name: str

    async def rank(self, facts: DecisionFacts, drafts: list[Draft]) -> list[RankedDraft]:
        """All ``drafts``, best first; a draft that fails the gate never outranks one that
        passes."""
        ...

    async def prepare(self, facts: DecisionFacts, texts: list[str]) -> None:
        """Does ahead, while drafting goes on, the second model's work that ranking
        ``texts`` (drafts as they finish; none: the decision's own texts) will need.

        An optimisation only: :meth:`rank` gives the same answer whether or not it ran,
        and a failure here is the caller's to ignore.
        """
        ...

    async def aclose(self) -> None:
        """Releases the second model's resources."""
        ...
