"""The drafting stage: prompt and one grammar per candidate in, N drafts out.

Constrained drafting decodes either by jumping forward through each candidate's grammar
(``decoding="jump"``, :mod:`expound.generators.jump`: the model decodes only at choice
points) or in one request with the whole grammar as structured output
(``decoding="grammar"``: every token decoded, kept to compare). Free drafting is one
request without a grammar.

Over the chat API (``api="chat"``, instruct models) each candidate is asked in chat
messages for one plan style (:func:`expound.generators.prompting.chat_prompt`): free
drafts then differ in plan as constrained ones do, and constrained drafts carry their
grammar as structured output on the chat request. Jump decoding appends forced text to a
raw prompt, so it has no chat form: that combination is refused at startup.

It never fails the RPC: if the LLM is down, slow or returns garbage, it returns no
drafts and a fallback reason, and the pipeline answers with the deterministic
explanation. The LLM gets what is left of the client's deadline, less a reserve for
ranking and archiving that grows with the calls in flight; without a deadline, the
configured timeout. A call first waits for an LLM slot (the generator's bound on calls
at once); that wait counts against the same budget and is reported as ``llm_queue``.
Ranking is the next stage (:mod:`expound.rankers`), not this one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from expound.domain import DraftingRecord
from expound.errors import LLMError, StartupError
from expound.explainers.facts import DecisionFacts
from expound.generators.base import ChatMessage, DraftRequest, Drafts, Generator, first_failure
from expound.generators.grammar import PlannedGrammar, candidate_grammars, phrase_bank
from expound.generators.jump import JumpDecoder
from expound.generators.prompting import (
    PromptTemplate,
    chat_prompt,
    chat_template,
    constrained_prompt,
    free_prompt,
)
from expound.llm.client import DEADLINE_EXCEEDED
from expound.llm.draft import Draft
from expound.rankers.routing import preferred_styles

DraftingMode = Literal["constrained", "free", "off"]
Decoding = Literal["jump", "grammar"]
LLMApi = Literal["completions", "chat"]
# The stage timing of the wait for an LLM slot (part of "draft").
LLM_QUEUE = "llm_queue"
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
    decoding: Decoding
    max_tokens: int
    temperature: float
    # The LLM's budget for a call without a client deadline (a deadline is honoured).
    timeout_s: float
    # The API drafts are asked on: raw prompts ("completions") or chat messages ("chat").
    api: LLMApi = "completions"

    def __post_init__(self) -> None:
        if self.api == "chat" and self.mode == "constrained" and self.decoding == "jump":
            raise StartupError(
                "EXPOUND_LLM_API=chat does not support EXPOUND_LLM_DECODING=jump (jump "
                "decoding extends a raw completions prompt): set EXPOUND_LLM_DECODING=grammar "
                "for constrained drafting over chat, or EXPOUND_LLM_MODE=free"
            )


@dataclass(frozen=True)
class _Ask:
    """What one request asks for: candidates sharing it go in one request (``n``)."""

    grammar: str | None
    style: str
    messages: tuple[ChatMessage, ...] = ()


def _grammars_for(facts: DecisionFacts, n: int) -> list[PlannedGrammar]:
    """One grammar per candidate, each a different plan (:func:`candidate_grammars`)."""
    return candidate_grammars(facts, n)


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
    def timings_ms(self) -> dict[str, float]:
        """The part of the stage's time spent waiting for an LLM slot."""
        return {LLM_QUEUE: self.record.queue_ms}

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
        self._jump = JumpDecoder(generator, config.temperature)

    def budget_s(self, time_left_s: float | None, calls_beside: int = 0) -> float:
        """The LLM's time: what is left of the deadline less :func:`reserve_s` of
        ``calls_beside``, the other calls in flight; without a deadline, the timeout."""
        if time_left_s is None:
            return self._config.timeout_s
        return time_left_s - reserve_s(calls_beside)

    async def draft(
        self,
        facts: DecisionFacts,
        n: int,
        drafting_seed: int,
        time_left_s: float | None,
        calls_beside: int = 0,
        on_draft: Callable[[str], None] | None = None,
    ) -> Drafting:
        """Drafts ``n`` candidates (seeded with ``drafting_seed``) within ``time_left_s``.

        The LLM gets :meth:`budget_s`; waiting for an LLM slot counts against it.
        ``on_draft`` is called with each draft's text as soon as the LLM has finished it
        (drafts of one request together), before the others are done; the drafts returned
        are those texts, cut-off tails trimmed.
        """
        config = self._config
        planned: list[PlannedGrammar] = []
        if config.mode == "constrained":
            planned = _grammars_for(facts, n)
            prompt, template = constrained_prompt(facts)
            bank = phrase_bank(facts.audience)
            bank_id, bank_sha = str(bank["id"]), str(bank["sha256"])
        else:
            prompt, template = free_prompt(facts)
            bank_id, bank_sha = "", ""
        grammars = [p.grammar.to_ebnf() for p in planned]
        asks = self._asks(facts, n, planned, grammars)
        if config.api == "chat":
            template = chat_template()
        budget = self.budget_s(time_left_s, calls_beside)
        record = self._record(n, drafting_seed, template, bank_id, bank_sha, grammars)
        if budget < MIN_LLM_S:
            return Drafting(
                record=record.model_copy(update={"error": "no time left for the LLM"}),
                fallback_reason=DEADLINE_EXCEEDED,
            )
        started = time.perf_counter()
        queued_s: float | None = None
        deadline = time.monotonic() + budget
        try:
            async with asyncio.timeout(budget), self._generator.slot():
                queued_s = time.perf_counter() - started
                if planned and config.decoding == "jump":
                    drafts, model, requests, tokens = await self._jump_drafts(
                        prompt, planned, drafting_seed, deadline, on_draft
                    )
                else:
                    drafts, model, requests, tokens = await self._one_request_drafts(
                        prompt, asks, drafting_seed, deadline, on_draft
                    )
        except (TimeoutError, LLMError) as error:
            waited = (time.perf_counter() - started) if queued_s is None else queued_s
            if isinstance(error, LLMError):
                message, reason = error.message, error.reason
            elif queued_s is None:
                message, reason = "deadline expired waiting for an LLM slot", DEADLINE_EXCEEDED
            else:
                message, reason = f"LLM call exceeded {budget:.1f} s", DEADLINE_EXCEEDED
            update = {"error": recorded_error(message), "queue_ms": waited * 1000}
            return Drafting(record=record.model_copy(update=update), fallback_reason=reason)
        assert queued_s is not None
        return Drafting(
            record=record.model_copy(
                update={
                    "model": model,
                    "latency_ms": (time.perf_counter() - started - queued_s) * 1000,
                    "queue_ms": queued_s * 1000,
                    "llm_requests": requests,
                    "completion_tokens": tokens,
                }
            ),
            drafts=[complete_sentences(d) for d in drafts],
        )

    def _record(
        self,
        n: int,
        drafting_seed: int,
        template: PromptTemplate,
        bank_id: str,
        bank_sha: str,
        grammars: list[str],
    ) -> DraftingRecord:
        config = self._config
        sampling: dict[str, float | int | str] = {
            "n": n,
            "seed": drafting_seed,
            "max_tokens": config.max_tokens,
            "temperature": config.temperature,
        }
        if grammars:
            sampling["decoding"] = config.decoding
        if config.api == "chat":
            # Absent: completions (records written before chat drafting have none).
            sampling["api"] = config.api
        return DraftingRecord(
            mode=config.mode,
            generator=self._generator.name,
            model="",
            template_id=template.template_id,
            template_sha256=template.sha256,
            phrase_bank_id=bank_id,
            phrase_bank_sha256=bank_sha,
            grammar_sha256=grammars_sha256(grammars),
            sampling=sampling,
        )

    async def _jump_drafts(
        self,
        prompt: str,
        planned: list[PlannedGrammar],
        seed: int,
        deadline: float,
        on_draft: Callable[[str], None] | None,
    ) -> tuple[list[Draft], str, int, int]:
        result = await self._jump.decode(
            prompt, [p.grammar for p in planned], seed, deadline, on_draft
        )
        drafts = [
            Draft(
                text=d.text.strip(),
                token_logprobs=d.token_logprobs,
                finish_reason="stop",
                index=i,
                style=p.style,
                chose=tuple(d.chose),
            )
            for i, (d, p) in enumerate(zip(result.drafts, planned, strict=True))
        ]
        return drafts, result.model, result.requests, result.completion_tokens

    def _asks(
        self, facts: DecisionFacts, n: int, planned: list[PlannedGrammar], grammars: list[str]
    ) -> list[_Ask]:
        """What each of the ``n`` candidates is asked for: its grammar (constrained), its
        plan style, and over chat the messages asking for that style (free chat drafts take
        the styles in the order the question prefers, as the grammars do)."""
        if planned:
            styles = [p.style for p in planned]
        elif self._config.api == "chat":
            preferred = preferred_styles(facts)
            styles = [preferred[i % len(preferred)] for i in range(n)]
        else:
            styles = [""] * n
        asks = []
        for index, style in enumerate(styles):
            grammar = grammars[index] if grammars else None
            messages = chat_prompt(facts, style)[0] if self._config.api == "chat" else ()
            asks.append(_Ask(grammar, style, messages))
        return asks

    async def _one_request_drafts(
        self,
        prompt: str,
        asks: list[_Ask],
        seed: int,
        deadline: float,
        on_draft: Callable[[str], None] | None,
    ) -> tuple[list[Draft], str, int, int]:
        """One request per distinct ask, for as many candidates as share it (all n, in one
        request, when they share one: free drafting over completions). The requests run
        at once; if one fails, the others are cancelled."""
        config = self._config
        groups: dict[_Ask, list[int]] = {}
        for index, ask in enumerate(asks):
            groups.setdefault(ask, []).append(index)
        requests = [
            DraftRequest(
                prompt=prompt,
                n=len(members),
                drafting_seed=seed + group,
                max_tokens=config.max_tokens,
                temperature=config.temperature,
                grammar=ask.grammar,
                timeout_s=max(0.001, deadline - time.monotonic()),
                messages=ask.messages,
            )
            for group, (ask, members) in enumerate(groups.items())
        ]
        answers = await _all(self._generator, requests, on_draft)
        drafts: list[Draft] = []
        model, tokens = "", 0
        for answer, (ask, members) in zip(answers, groups.items(), strict=True):
            model, tokens = model or answer.model, tokens + answer.completion_tokens
            for index, draft in zip(members, answer.drafts, strict=False):
                drafts.append(replace(draft, index=index, style=ask.style))
        drafts.sort(key=lambda draft: draft.index)
        return drafts, model, len(groups), tokens


async def _all(
    generator: Generator,
    requests: list[DraftRequest],
    on_draft: Callable[[str], None] | None = None,
) -> list[Drafts]:
    """The answers to ``requests``, asked at once; the first failure cancels the rest.
    ``on_draft`` gets each answer's drafts (trimmed) as soon as that answer is in."""

    async def answered(request: DraftRequest) -> Drafts:
        answer = await generator.generate(request)
        if on_draft is not None:
            for draft in answer.drafts:
                on_draft(complete_sentences(draft).text)
        return answer

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(answered(request)) for request in requests]
    except ExceptionGroup as failed:
        raise first_failure(failed) from None
    return [task.result() for task in tasks]


def grammars_sha256(grammars: Sequence[str]) -> str:
    """The sha256 of the candidates' grammars: of the EBNF where they share one, else of
    the JSON list of them in candidate order; "" without one."""
    if not grammars:
        return ""
    distinct = set(grammars)
    text = grammars[0] if len(distinct) == 1 else json.dumps(list(grammars))
    return hashlib.sha256(text.encode()).hexdigest()
