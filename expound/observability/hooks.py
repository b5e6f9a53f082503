"""What the pipeline and the LLM client report, as one narrow interface with a silent default.

The pipeline, admission and the LLM client call an :class:`Observer`; they never import
prometheus or OpenTelemetry. :class:`Observer` itself reports nothing and costs a method call,
so a pipeline built without telemetry (tests, tools) behaves as before;
:class:`expound.observability.telemetry.Telemetry` is the real one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager

import httpx

# Why a call was shed: the bound on Explain calls, the LLM queue, or too little deadline left.
SHED_CALLS = "calls"
SHED_LLM_QUEUE = "llm_queue"
SHED_DEADLINE = "deadline"

# The outcome of an LLM request that answered (failures are their LLMError reason).
LLM_OK = "OK"

_NOTHING: AbstractContextManager[None] = contextlib.nullcontext()


class Observer:
    """Receives what the pipeline does; this base ignores it (the no-op default)."""

    def stage(self, name: str) -> AbstractContextManager[None]:
        """A context around one pipeline stage (a span, where tracing is on)."""
        return _NOTHING

    def explained(
        self, timings_ms: Mapping[str, float], fallback_reason: str, rejections: Iterable[str]
    ) -> None:
        """One answered Explain call.

        Args:
            timings_ms: its stage timings, by the names the answer carries.
            fallback_reason: why the deterministic explanation was selected ("" if it was not).
            rejections: the violation kinds of drafts the gate rejected, once per draft and kind.
        """

    def archived(self, log_size: int) -> None:
        """A record was committed; the log now holds ``log_size`` entries."""

    def archive_failed(self) -> None:
        """A record could not be committed."""

    def shed(self, reason: str) -> None:
        """A call was refused with RESOURCE_EXHAUSTED (``SHED_*`` says which bound)."""

    def llm_call(
        self,
        client: str,
        seconds: float,
        outcome: str,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        """One request to an LLM: its client ("LLM", "judge"), latency, outcome and usage."""

    def llm_transport(
        self, transport: httpx.AsyncBaseTransport | None
    ) -> httpx.AsyncBaseTransport | None:
        """The transport the LLM client should use (wrapped for tracing where it is on)."""
        return transport


NO_OBSERVER = Observer()
