"""A scripted generator for unit tests of the code around drafting (not for integration).

:class:`FakeGenerator` answers one-request drafting with scripted texts and jump-forward
choices by a seeded rule (:func:`fake_choice`) over a word tokenizer
(:func:`fake_tokens`); the LLM stub of the tests serves the same rule over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import zlib
from collections.abc import AsyncIterator, Callable

from expound.errors import LLMError
from expound.generators.base import Choice, ChoiceRequest, DraftRequest, Drafts
from expound.llm.draft import Draft
from expound.llm.pool import ServerState

# A word with the white space before it is one token; so is white space at the end.
_TOKEN = re.compile(r"\s*\S+|\s+")
FAKE_END_TOKEN = 1
FAKE_LOGPROB = -0.25


def fake_pieces(text: str) -> list[str]:
    """``text`` split into the fake tokenizer's tokens (as text)."""
    return _TOKEN.findall(text)


def fake_tokens(text: str) -> tuple[int, ...]:
    """The fake tokenizer's token ids of ``text`` (stable across runs)."""
    return tuple(2 + zlib.crc32(piece.encode()) % 1_000_000 for piece in fake_pieces(text))


def fake_choice(request: ChoiceRequest) -> Choice:
    """The seed picks a choice; it is spelled token by token, then the end token, as far
    as ``max_tokens`` reaches (as vLLM does under a ``choice`` structured output)."""
    picked = random.Random(request.seed).choice(request.choices)
    pieces = fake_pieces(picked)
    if len(pieces) < request.max_tokens:  # room for the end token
        return Choice(
            text=picked,
            token_logprobs=[FAKE_LOGPROB] * len(pieces) + [0.0],
            finish_reason="stop",
            model="fake",
            completion_tokens=len(pieces) + 1,
        )
    taken = pieces[: request.max_tokens]
    return Choice(
        text="".join(taken),
        token_logprobs=[FAKE_LOGPROB] * len(taken),
        finish_reason="length",
        model="fake",
        completion_tokens=len(taken),
    )


class FakeGenerator:
    """Returns scripted drafts, or raises a scripted error, and records the requests."""

    name = "fake"

    def __init__(
        self,
        texts: Callable[[DraftRequest], list[str]] | list[str] | None = None,
        error: LLMError | None = None,
        delay_s: float = 0.0,
        healthy: bool = True,
        max_concurrency: int = 4,
        tokenizes: bool = True,
    ) -> None:
        """A fake backend.

        Args:
            texts: the drafts one-request drafting returns.
            error: raised by every request instead.
            delay_s: each request's time (a jump-forward choice's too).
            healthy: what the health check says.
            max_concurrency: drafting calls at once (:meth:`slot`).
            tokenizes: whether :meth:`tokenize` counts tokens (else None, as a server
                without the endpoint).
        """
        self._texts = texts if texts is not None else []
        self._handed_out = 0  # scripted texts given out so far
        self._error = error
        self._delay_s = delay_s
        self._healthy = healthy
        self._slots = asyncio.Semaphore(max_concurrency)
        self._tokenizes = tokenizes
        self.requests: list[DraftRequest] = []
        self.choice_requests: list[ChoiceRequest] = []
        self.tokenized: list[str] = []

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            yield

    async def _answer(self) -> None:
        if self._delay_s:
            await asyncio.sleep(self._delay_s)
        if self._error is not None:
            raise self._error

    async def generate(self, request: DraftRequest) -> Drafts:
        self.requests.append(request)
        await self._answer()
        if callable(self._texts):
            texts = self._texts(request)[: request.n]
        else:
            # Scripted texts are handed out in order across requests (one per distinct
            # grammar): the first request of a call gets the first texts, the next the next.
            start = self._handed_out
            texts = self._texts[start : start + request.n]
            self._handed_out += len(texts)
        drafts = [
            Draft(
                text=t,
                token_logprobs=[-0.5] * max(1, len(t.split())),
                finish_reason="stop",
                index=i,
            )
            for i, t in enumerate(texts)
        ]
        return Drafts(
            drafts=drafts, model="fake", latency_ms=self._delay_s * 1000, completion_tokens=0
        )

    async def choose(self, request: ChoiceRequest) -> Choice:
        self.choice_requests.append(request)
        await self._answer()
        return fake_choice(request)

    async def tokenize(self, text: str, timeout_s: float) -> tuple[int, ...] | None:
        self.tokenized.append(text)
        return fake_tokens(text) if self._tokenizes else None

    async def check_health(self) -> bool:
        return self._healthy

    def servers(self) -> list[ServerState]:
        return []  # no server behind it

    async def aclose(self) -> None:
        return None
