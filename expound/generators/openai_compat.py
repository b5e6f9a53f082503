"""Drafting through an OpenAI-compatible completions or chat API, as served by vLLM.

A request with chat messages goes to ``/v1/chat/completions`` (the server applies the
model's own chat template), any other to ``/v1/completions``; a grammar goes as the same
``structured_outputs`` field to either. The same generator serves a GPU deployment
(`vllm serve MODEL`, or replicas behind a router) and the embedded CPU server. Transport
failures are translated by :class:`expound.llm.client.CompletionsClient`; an answer off
the documented shape is LLM_BAD_RESPONSE here. Requests are made inside the caller's
:meth:`slot`, which bounds the drafting calls on the LLM at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

from expound.errors import LLMError
from expound.generators.base import ChatMessage, Choice, ChoiceRequest, DraftRequest, Drafts
from expound.llm.client import LLM_BAD_RESPONSE, CompletionsClient
from expound.llm.draft import Draft
from expound.llm.pool import ServerState
from expound.observability.hooks import NO_OBSERVER, Observer

# Not probed yet / probed and unknown (the server does not return token ids).
_UNPROBED = -2
_UNKNOWN = -1


class OpenAICompatGenerator:
    """Drafts candidates with `/v1/completions` or `/v1/chat/completions` requests (one per
    decision and plan style, ``generate``), or `/v1/completions` requests one per choice
    point and candidate (``choose``, jump-forward decoding, which appends forced text to a
    raw prompt and so has no chat form)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        max_concurrency: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: Observer = NO_OBSERVER,
    ) -> None:
        self._client = CompletionsClient(
            base_url, api_key, max_concurrency, transport, observer=observer
        )
        self._model = model
        self._end_token = _UNPROBED
        self.name = f"openai-compat:{model}"

    def slot(self) -> AbstractAsyncContextManager[None]:
        return self._client.slot()

    def _body(self, request: DraftRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "n": request.n,
            "seed": request.drafting_seed,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.messages:
            body["messages"] = chat_messages(request.messages)
            body["logprobs"] = True  # chat's per-token logprobs (``logprobs.content``)
        else:
            body["prompt"] = request.prompt
            body["logprobs"] = 1
        if request.grammar is not None:
            body["structured_outputs"] = {"grammar": request.grammar}
        return body

    async def generate(self, request: DraftRequest) -> Drafts:
        started = time.perf_counter()
        body = self._body(request)
        if request.messages:
            payload = await self._client.chat(body, request.timeout_s, True)
            drafts = parse_chat(payload)
        else:
            payload = await self._client.complete(body, request.timeout_s, True)
            drafts = parse_completions(payload)
        return Drafts(
            drafts=drafts.drafts,
            model=drafts.model,
            latency_ms=(time.perf_counter() - started) * 1000,
            completion_tokens=drafts.completion_tokens,
        )

    async def _end_token_id(self, timeout_s: float) -> int:
        """The model's end-of-text token, which ``allowed_token_ids`` must let through
        (without it a choice that is complete can neither end nor go on, and vLLM fails
        the request). Probed once: a choice of only ``""`` forces that token."""
        if self._end_token == _UNPROBED:
            body = {
                "model": self._model,
                "prompt": ".",
                "max_tokens": 1,
                "structured_outputs": {"choice": [""]},
                "return_token_ids": True,
            }
            payload = await self._client.complete(body, timeout_s, True)
            try:
                ids = payload["choices"][0]["token_ids"]
                self._end_token = int(ids[0]) if isinstance(ids, list) and ids else _UNKNOWN
            except (KeyError, IndexError, TypeError, ValueError):
                self._end_token = _UNKNOWN
        return self._end_token

    async def choose(self, request: ChoiceRequest) -> Choice:
        body: dict[str, Any] = {
            "model": self._model,
            "prompt": request.prompt,
            "seed": request.seed,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "logprobs": 1,
            "structured_outputs": {"choice": list(request.choices)},
        }
        if request.allowed_token_ids:
            end = await self._end_token_id(request.timeout_s)
            if end >= 0:
                body["allowed_token_ids"] = sorted({*request.allowed_token_ids, end})
        payload = await self._client.complete(body, request.timeout_s, True)
        parsed = parse_completions(payload, strip=False)
        if len(parsed.drafts) != 1:
            raise LLMError(f"LLM answered {len(parsed.drafts)} choices, 1 asked", LLM_BAD_RESPONSE)
        usage = payload.get("usage")
        prompt_tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else 0
        draft = parsed.drafts[0]
        return Choice(
            text=draft.text,
            token_logprobs=draft.token_logprobs,
            finish_reason=draft.finish_reason,
            model=parsed.model,
            prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else 0,
            completion_tokens=parsed.completion_tokens,
        )

    async def tokenize(self, text: str, timeout_s: float) -> tuple[int, ...] | None:
        return await self._client.tokenize(text, timeout_s)

    async def check_health(self) -> bool:
        return await self._client.check_health()

    def servers(self) -> list[ServerState]:
        return self._client.servers()

    async def aclose(self) -> None:
        await self._client.aclose()


def parse_completions(payload: dict[str, Any], strip: bool = True) -> Drafts:
    """Parses a completions answer; anything off the documented shape is LLM_BAD_RESPONSE.

    Args:
        payload: the JSON answer.
        strip: drop white space around each text (a whole draft); a choice keeps it.
    """

    def read(choice: dict[str, Any]) -> tuple[object, list[float]]:
        logprobs = choice.get("logprobs") or {}
        tokens = [float(x) for x in logprobs.get("token_logprobs") or [] if x is not None]
        return choice["text"], tokens

    return _parsed(payload, read, strip, "LLM answer")


def chat_messages(messages: tuple[ChatMessage, ...]) -> list[dict[str, str]]:
    """The messages as the chat API takes them."""
    return [{"role": m.role, "content": m.content} for m in messages]


def parse_chat(payload: dict[str, Any]) -> Drafts:
    """Parses a chat completions answer; anything off the documented shape (a choice
    without a message, content that is not a string, logprobs that are not numbers) is
    LLM_BAD_RESPONSE."""

    def read(choice: dict[str, Any]) -> tuple[object, list[float]]:
        logprobs = choice.get("logprobs") or {}
        tokens = [float(t["logprob"]) for t in logprobs.get("content") or []]
        return choice["message"]["content"], tokens

    return _parsed(payload, read, True, "LLM chat answer")


def _parsed(
    payload: dict[str, Any],
    read: Callable[[dict[str, Any]], tuple[object, list[float]]],
    strip: bool,
    what: str,
) -> Drafts:
    """The drafts of an answer whose choices ``read`` takes apart (text, token
    log-probabilities); anything off the shape is LLM_BAD_RESPONSE, naming ``what``."""
    try:
        drafts: list[Draft] = []
        for choice in payload["choices"]:
            text, token_logprobs = read(choice)
            if not isinstance(text, str):
                raise TypeError("text is not a string")
            drafts.append(
                Draft(
                    text=text.strip() if strip else text,
                    token_logprobs=token_logprobs,
                    finish_reason=str(choice.get("finish_reason") or ""),
                    index=int(choice.get("index", len(drafts))),
                )
            )
        usage = payload.get("usage") or {}
        return Drafts(
            drafts=drafts,
            model=str(payload.get("model", "")),
            latency_ms=0.0,
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LLMError(f"malformed {what}: {exc!r}"[:300], LLM_BAD_RESPONSE) from exc
