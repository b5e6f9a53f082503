"""The drafting contract: a prompt (and optional grammar) in, N candidate drafts out.

One request asks for all N drafts (``n``) so the shared prompt is prefilled once.
Backends raise :class:`expound.errors.GeneratorError` with a fallback reason; the
pipeline then answers with the deterministic explanation and records why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Fallback reasons recorded when no drafted candidate is selected.
LLM_UNAVAILABLE = "LLM_UNAVAILABLE"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
LLM_BAD_RESPONSE = "LLM_BAD_RESPONSE"
ALL_UNFAITHFUL = "ALL_UNFAITHFUL"
DRAFTING_DISABLED = "DRAFTING_DISABLED"


@dataclass(frozen=True)
class DraftRequest:
    """What to ask the model for."""

    prompt: str
    n: int
    seed: int
    max_tokens: int
    temperature: float
    grammar: str | None = None  # EBNF for structured outputs; None for free drafting
    timeout_s: float = 30.0


@dataclass(frozen=True)
class Draft:
    """One candidate as the model wrote it."""

    text: str
    token_logprobs: list[float] = field(default_factory=list)
    finish_reason: str = ""
    index: int = 0

    @property
    def mean_logprob(self) -> float | None:
        """Mean per-token log-likelihood (None if the backend returned none)."""
        if not self.token_logprobs:
            return None
        return sum(self.token_logprobs) / len(self.token_logprobs)


@dataclass(frozen=True)
class Drafts:
    """A batch of drafts and what produced them."""

    drafts: list[Draft]
    model: str
    latency_ms: float
    completion_tokens: int


class Generator(Protocol):
    """A backend that drafts candidate explanations."""

    name: str

    async def generate(self, request: DraftRequest) -> Drafts:
        """Drafts ``request.n`` candidates in one call."""
        ...

    async def check_health(self) -> bool:
        """True when the backend answers."""
        ...

    async def aclose(self) -> None:
        """Releases the backend's connections."""
        ...
