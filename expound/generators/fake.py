"""A scripted generator for unit tests of the code around drafting (not for integration)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from expound.errors import GeneratorError
from expound.generators.base import Draft, DraftRequest, Drafts


class FakeGenerator:
    """Returns scripted drafts, or raises a scripted error, and records the requests."""

    name = "fake"

    def __init__(
        self,
        texts: Callable[[DraftRequest], list[str]] | list[str] | None = None,
        error: GeneratorError | None = None,
        delay_s: float = 0.0,
        healthy: bool = True,
    ) -> None:
        self._texts = texts if texts is not None else []
        self._error = error
        self._delay_s = delay_s
        self._healthy = healthy
        self.requests: list[DraftRequest] = []

    async def generate(self, request: DraftRequest) -> Drafts:
        self.requests.append(request)
        if self._delay_s:
            await asyncio.sleep(self._delay_s)
        if self._error is not None:
            raise self._error
        texts = self._texts(request) if callable(self._texts) else self._texts
        drafts = [
            Draft(
                text=t,
                token_logprobs=[-0.5] * max(1, len(t.split())),
                finish_reason="stop",
                index=i,
            )
            for i, t in enumerate(texts[: request.n])
        ]
        return Drafts(
            drafts=drafts, model="fake", latency_ms=self._delay_s * 1000, completion_tokens=0
        )

    async def check_health(self) -> bool:
        return self._healthy

    async def aclose(self) -> None:
        return None
