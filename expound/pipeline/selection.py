"""From ranked drafts to the answer's candidates, its selection and the drafting record.

The one place that decides what is selected: the best-ranked draft if it passed the
faithfulness gate, else nothing (the pipeline then selects the deterministic
explanation) with the reason why.
"""

from __future__ import annotations

from dataclasses import dataclass

from expound.domain import Candidate, DraftingRecord, DraftRecord
from expound.generators.drafting import Drafting
from expound.rankers.base import RankedDraft

# Fallback reason when drafts came back but none passed the gate.
ALL_UNFAITHFUL = "ALL_UNFAITHFUL"


@dataclass(frozen=True)
class Selection:
    """Ranked candidates, the selection (None -> fallback) and the record of what ran."""

    candidates: list[Candidate]
    selected: Candidate | None
    fallback_reason: str
    record: DraftingRecord


def select(drafting: Drafting, ranked: list[RankedDraft], ranker: str) -> Selection:
    """Turns the ranking of ``drafting``'s drafts into candidates and a selection.

    Args:
        drafting: what the drafting stage produced (with its fallback reason, if any).
        ranked: its drafts as the ranker ordered them (empty when drafting failed).
        ranker: the ranker's name, for the record.
    """
    record = drafting.record.model_copy(update={"ranker": ranker})
    if drafting.fallback_reason:
        return Selection([], None, drafting.fallback_reason, record)
    candidates = [
        Candidate(
            text=r.draft.text,
            rank=r.rank,
            deterministic=False,
            faithful=r.verdict.passed,
            scores=r.scores,
            violations=[str(v) for v in r.verdict.violations],
            generator=drafting.generator,
        )
        for r in ranked
    ]
    record = record.model_copy(
        update={
            "drafts": [
                DraftRecord(
                    index=r.draft.index,
                    text=r.draft.text,
                    token_logprobs=r.draft.token_logprobs,
                    finish_reason=r.draft.finish_reason,
                    passed=r.verdict.passed,
                    violations=[str(v) for v in r.verdict.violations],
                    scores=r.scores,
                    style=r.draft.style,
                    chose=list(r.draft.chose),
                )
                for r in sorted(ranked, key=lambda r: r.draft.index)
            ]
        }
    )
    selected = candidates[0] if candidates and candidates[0].faithful else None
    return Selection(candidates, selected, "" if selected else ALL_UNFAITHFUL, record)
