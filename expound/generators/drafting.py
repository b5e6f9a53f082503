"""The drafting stage: prompt (and grammar) in, one request for N drafts, drafts out.

It never fails the RPC: if the LLM is down, slow or returns garbage, it returns no
drafts and a fallback reason, and the pipeline answers with the deterministic
explanation. The LLM gets what is left of the deadline, less a reserve for ranking and
archiving that grows with the calls in flight. Ranking is the next stage
(:mod:`expound.rankers`), not this one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from typing import Literal

from expound.domain import DraftingRecord
from expound.errors import LLMError
from expound.explainers.facts import DecisionFacts
from expound.generators.base import DraftRequest, Generator
from expound.generators.grammar import build_grammar, phrase_bank
from expound.generators.prompting import constrained_prompt, free_prompt
from expound.llm.client import DEADLINE_EXCEEDED
from expound.llm.draft import Draft

DraftingMode = Literal["constrained", "free", "off"]
# Time kept back from the deadline for ranking, archiving and the answer; and more per
# call in flight beside this one: when the LLM hangs, the calls waiting on it time out
# together and their records are committed one after another (about 5 ms each on SQLite).
RESERVE_S = 0.5
RESERVE_PER_CALL_S = 0.02
MIN_LLM_S = 0.5


def reserve_s(calls_beside: int) -> float:
    """The time kept back from the deadline with ``calls_beside`` other calls in flight."""
    return RESERVE_S + RESERVE_PER_CALL_S * calls_beside


@dataclass(frozen=True)
class DraftingConfig:
    """How drafting runs (from settings)."""

    mode: DraftingMode
    max_tokens: int
    temperature: float
    timeout_s: float


@dataclass(frozen=True)
class Drafting:
    """What the drafting stage produced.

    ``drafts`` are ready to rank, and to archive as judged (cut-off tails trimmed).
    ``fallback_reason`` is set, and ``drafts`` empty, when the LLM gave no usable answer.
    """

    record: DraftingRecord
    drafts: list[Draft] = field(default_factory=list)
    fallback_reason: str = ""

    @property
    def generator(self) -> str:
        """What a drafted candidate names as its generator: backend and mode."""
        return f"{self.record.generator}/{self.record.mode}"


# The end of a sentence: a terminator, any closing quotes or brackets, then white space
# ("3.5" ends nothing). Not the end of the text: where the token limit cut, "by 0." may be
# the start of "by 0.5", so a cut draft's last sentence counts only if something followed.
SENTENCE_END = re.compile(r"""[.!?\u2026\u3002]+["'\u2019\u201d)\]]*(?=\s)""")


def complete_sentences(draft: Draft) -> Draft:
    """A draft cut off by the token limit, trimmed to its last complete sentence.

    Each sentence a grammar admits is a whole, true statement; a half sentence is not
    ("... by 0."), so the cut tail is dropped rather than judged. Any terminator counts
    (". ", ".\n", '." ', "?", "!", an ellipsis). The trimmed text is what is judged, shown
    and archived: a verdict is always about the text it is stored with.
    """
    if draft.finish_reason != "length":
        return draft
    ends = [match.end() for match in SENTENCE_END.finditer(draft.text)]
    trimmed = draft.text[: ends[-1]] if ends else ""
    return replace(draft, text=trimmed)


# An LLM failure's message may quote what the LLM server sent (an HTTP error body, a
# malformed answer); the record is archived and served by GetRecord, so it keeps only a
# short excerpt, on one line, of printable characters.
MAX_RECORDED_ERROR_BYTES = 160


def recorded_error(message: str) -> str:
    """``message`` as the drafting record keeps it: one printable line, at most 160 bytes."""
    printable = "".join(ch if ch.isprintable() else " " for ch in message)
    line = " ".join(printable.split())
    encoded = line.encode("utf-8")
    if len(encoded) <= MAX_RECORDED_ERROR_BYTES:
        return line
    return encoded[: MAX_RECORDED_ERROR_BYTES - 3].decode("utf-8", "ignore") + "..."


class Drafter:
    """Drafts candidate explanations for one decision."""

    def __init__(self, generator: Generator, config: DraftingConfig) -> None:
        self._generator = generator
        self._config = config

    async def draft(
        self,
        facts: DecisionFacts,
        n: int,
        drafting_seed: int,
        time_left_s: float | None,
        calls_beside: int = 0,
    ) -> Drafting:
        """Drafts ``n`` candidates (seeded with ``drafting_seed``) within ``time_left_s``.

        The LLM gets ``time_left_s`` less :func:`reserve_s` of ``calls_beside``, the other
        calls in flight, and never more than the configured timeout.
        """
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
            budget = min(budget, time_left_s - reserve_s(calls_beside))
        sampling: dict[str, float | int | str] = {
            "n": n,
            "seed": drafting_seed,
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
        )
        if budget < MIN_LLM_S:
            return Drafting(
                record=record.model_copy(update={"error": "no time left for the LLM"}),
                fallback_reason=DEADLINE_EXCEEDED,
            )
        request = DraftRequest(
            prompt=prompt,
            n=n,
            drafting_seed=drafting_seed,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            grammar=grammar,
            timeout_s=budget,
        )
        try:
            drafts = await self._generator.generate(request)
        except LLMError as error:
            return Drafting(
                record=record.model_copy(update={"error": recorded_error(error.message)}),
                fallback_reason=error.reason,
            )
        return Drafting(
            record=record.model_copy(
                update={
                    "model": drafts.model,
                    "latency_ms": drafts.latency_ms,
                    "completion_tokens": drafts.completion_tokens,
                }
            ),
            drafts=[complete_sentences(d) for d in drafts.drafts],
        )
