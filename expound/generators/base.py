"""The drafting contract: a prompt (and optional grammar) in, N candidate drafts out.

A draft request is a prompt for the completions API or, for instruct models, chat
messages (:class:`ChatMessage`) for the chat API. Two ways to draft under a grammar.
:meth:`Generator.generate` asks for all N drafts in one request (``n``) with the whole
grammar, so the model decodes every token, forced or not.
:meth:`Generator.choose` asks the model only to choose among the alternatives of one
choice point (jump-forward decoding, :mod:`expound.generators.jump`), a few tokens at a
time; :meth:`Generator.tokenize` tells it how many tokens a choice takes.

Backends raise :class:`expound.errors.LLMError` with a fallback reason; the pipeline
then answers with the deterministic explanation and records why. A backend serves at
most a bounded number of drafting calls at once: :meth:`Generator.slot` waits for a
place, and the requests of one call are made inside it.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from expound.errors import LLMError
from expound.llm.draft import Draft
from expound.llm.pool import ServerState


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat request: ``role`` is "system", "user" or "assistant"."""

    role: str
    content: str


@dataclass(frozen=True)
class DraftRequest:
    """What to ask the model for.

    With ``messages`` the request goes to the chat API (the server renders them with the
    model's own chat template) and ``prompt`` is unused; without, to the completions API.
    A grammar constrains the answer either way.
    """

    prompt: str
    n: int
    drafting_seed: int
    max_tokens: int
    temperature: float
    grammar: str | None = None  # EBNF for structured outputs; None for free drafting
    timeout_s: float = 30.0
    messages: tuple[ChatMessage, ...] = ()


@dataclass(frozen=True)
class Drafts:
    """A batch of drafts and what produced them."""

    drafts: list[Draft]
    model: str
    latency_ms: float
    completion_tokens: int


@dataclass(frozen=True)
class ChoiceRequest:
    """Continue ``prompt`` with exactly one of ``choices``, in at most ``max_tokens``.

    ``choices`` are the alternatives' shortest distinguishing prefixes (``""``: the text
    may end here). ``allowed_token_ids``, when given, are the choices' own tokens, so the
    model spells a choice the way the tokenizer would (no detour through odd splits such
    as a lone space); the backend adds its end-of-text token.
    """

    prompt: str
    choices: tuple[str, ...]
    max_tokens: int
    seed: int
    temperature: float
    timeout_s: float
    allowed_token_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Choice:
    """What the model decoded at one choice point."""

    text: str
    token_logprobs: list[float] = field(default_factory=list)
    finish_reason: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Generator(Protocol):
    """A backend that drafts candidate explanations."""

    name: str

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Waits for one of the backend's places for a drafting call, held until exit."""
        ...

    async def generate(self, request: DraftRequest) -> Drafts:
        """Drafts ``request.n`` candidates in one call."""
        ...

    async def choose(self, request: ChoiceRequest) -> Choice:
        """Decodes the start of one of ``request.choices``: what the model chose."""
        ...

    async def tokenize(self, text: str, timeout_s: float) -> tuple[int, ...] | None:
        """The model's tokens of ``text``; None when the backend cannot say."""
        ...

    async def check_health(self) -> bool:
        """True when the backend answers (one of its servers, for a pool)."""
        ...

    def servers(self) -> list[ServerState]:
        """Each LLM server behind the backend, as last seen (empty for none)."""
        ...

    async def aclose(self) -> None:
        """Releases the backend's connections."""
        ...


def first_failure(failed: BaseExceptionGroup[BaseException]) -> BaseException:
    """What a task group of LLM requests failed with, to raise in its place: the first
    LLM error (a fallback reason the caller records), else the first failure."""
    llm_errors: list[BaseException] = [e for e in failed.exceptions if isinstance(e, LLMError)]
    return (llm_errors or list(failed.exceptions))[0]
