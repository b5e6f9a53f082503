"""The drafting contract: a prompt (and optional grammar) in, N candidate drafts out.

One request asks for all N drafts (``n``) so the shared prompt is prefilled once.
Backends raise :class:`expound.errors.LLMError` with a fallback reason; the pipeline
then answers with the deterministic explanation and records why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from expound.llm.draft import Draft


@dataclass(frozen=True)
class DraftRequest:
    """What to ask the model for."""

    prompt: str
    n: int
    drafting_seed: int
    max_tokens: int
    temperature: float
    grammar: str | None = None  # EBNF for structured outputs; None for free drafting
    timeout_s: float = 30.0


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
