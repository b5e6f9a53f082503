"""The drafting stage: prompt (and grammar), one request for N drafts, verify and rank.

It never fails the RPC: if the LLM is down, slow or returns garbage, or no draft passes
the faithfulness gate, it returns no selection and a fallback reason, and the pipeline
answers with the deterministic explanation. The LLM gets what is left of the deadline.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Literal

from expound.domain import Candidate, DraftingRecord, DraftRecord
from expound.errors import GeneratorError
from expound.explainers.facts import DecisionFacts
from expound.generators.base import (
    ALL_UNFAITHFUL,
    DEADLINE_EXCEEDED,
    Draft,
    DraftRequest,
    Generator,
)
from expound.generators.grammar import build_grammar, phrase_bank
from expound.generators.prompting import constrained_prompt, free_prompt
from expound.rankers.ranker import ScoringRanker

DraftingMode = Literal["constrained", "free", "off"]
# Time kept back from the deadline for ranking, archiving and the answer.
RESERVE_S = 0.5
MIN_LLM_S = 0.5


@dataclass(frozen=True)
class DraftingConfig:
    """How drafting runs (from settings)."""

    mode: DraftingMode
    max_tokens: int
    temperature: float
    timeout_s: float


@dataclass
class DraftingOutcome:
    """Ranked candidates, the selection (None -> fallback) and the record of what ran."""

    candidates: list[Candidate] = field(default_factory=list)
    selected: Candidate | None = None
    fallback_reason: str = ""
    record: DraftingRecord | None = None


def complete_sentences(draft: Draft) -> Draft:
    """A draft cut off by the token limit, trimmed to its last complete sentence.

    Each sentence a grammar admits is a whole, true statement; a half sentence is not
    ("... by 0."), so the cut tail is dropped rather than judged. The record keeps the
    text exactly as the model returned it.
    """
    if draft.finish_reason != "length":
        return draft
    end = max(draft.text.rfind(". "), draft.text.rfind("? "), draft.text.rfind("! "))
    if draft.text.endswith((".", "?", "!")):
        end = len(draft.text) - 1
    trimmed = draft.text[: end + 1] if end >= 0 else ""
    return replace(draft, text=trimmed)


class Drafter:
    """Drafts and ranks candidate explanations for one decision."""

    def __init__(self, generator: Generator, ranker: ScoringRanker, config: DraftingConfig) -> None:
        self._generator = generator
        self._ranker = ranker
        self._config = config

    async def draft(
        self, facts: DecisionFacts, n: int, seed: int, time_left_s: float | None
    ) -> DraftingOutcome:
        """Drafts ``n`` candidates (seeded) within ``time_left_s`` and ranks them."""
        config = self._config
        if config.mode == "constrained":
            prompt, template = constrained_prompt(facts)
            grammar: str | None = build_grammar(facts).to_ebnf()
            bank = phrase_bank(facts.audience)
            bank_id, bank_sha = str(bank["id"]), str(bank["sha256"])
        else:
            prompt, template = free_prompt(facts)
            grammar, bank_id, bank_sha = None, "", ""
        budget = config.timeout_s
        if time_left_s is not None:
            budget = min(budget, time_left_s - RESERVE_S)
        sampling: dict[str, float | int | str] = {
            "n": n,
            "seed": seed,
            "max_tokens": config.max_tokens,
            "temperature": config.temperature,
        }
        record = DraftingRecord(
            mode=config.mode,
            generator=self._generator.name,
            model="",
            template_id=template.template_id,
            template_sha256=template.sha256,
            phrase_bank_id=bank_id,
            phrase_bank_sha256=bank_sha,
            grammar_sha256=hashlib.sha256(grammar.encode()).hexdigest() if grammar else "",
            sampling=sampling,
            ranker=self._ranker.name,
        )
        if budget < MIN_LLM_S:
            return DraftingOutcome(
                fallback_reason=DEADLINE_EXCEEDED,
                record=record.model_copy(update={"error": "no time left for the LLM"}),
            )
        request = DraftRequest(
            prompt=prompt,
            n=n,
            seed=seed,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            grammar=grammar,
            timeout_s=budget,
        )
        try:
            drafts = await self._generator.generate(request)
        except GeneratorError as error:
            return DraftingOutcome(
                fallback_reason=error.reason,
                record=record.model_copy(update={"error": error.message}),
            )
        raw_text = {d.index: d.text for d in drafts.drafts}
        ranked = await self._ranker.rank(facts, [complete_sentences(d) for d in drafts.drafts])
        candidates = [
            Candidate(
                text=r.draft.text,
                rank=r.rank,
                deterministic=False,
                faithful=r.verdict.passed,
                scores=r.scores,
                violations=[str(v) for v in r.verdict.violations],
                generator=f"{self._generator.name}/{config.mode}",
            )
            for r in ranked
        ]
        record = record.model_copy(
            update={
                "model": drafts.model,
                "latency_ms": drafts.latency_ms,
                "completion_tokens": drafts.completion_tokens,
                "drafts": [
                    DraftRecord(
                        index=r.draft.index,
                        text=raw_text[r.draft.index],
                        token_logprobs=r.draft.token_logprobs,
                        finish_reason=r.draft.finish_reason,
                        passed=r.verdict.passed,
                        violations=[str(v) for v in r.verdict.violations],
                        scores=r.scores,
                    )
                    for r in sorted(ranked, key=lambda r: r.draft.index)
                ],
            }
        )
        selected = candidates[0] if candidates and candidates[0].faithful else None
        return DraftingOutcome(
            candidates=candidates,
            selected=selected,
            fallback_reason="" if selected else ALL_UNFAITHFUL,
            record=record,
        )
