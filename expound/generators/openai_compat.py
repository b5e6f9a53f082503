"""Drafting through an OpenAI-compatible completions API, as served by vLLM.

The same generator serves a GPU deployment (`vllm serve MODEL`, or replicas behind a
router) and the embedded CPU server. Transport failures are translated by
:class:`expound.llm.client.CompletionsClient`; an answer off the documented shape is
LLM_BAD_RESPONSE here.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from expound.errors import LLMError
from expound.generators.base import DraftRequest, Drafts
from expound.llm.client import LLM_BAD_RESPONSE, CompletionsClient
from expound.llm.draft import Draft
from expound.observability.hooks import NO_OBSERVER, Observer


class OpenAICompatGenerator:
    """Drafts candidates with one `/v1/completions` request per decision."""

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
        self.name = f"openai-compat:{model}"

    def _body(self, request: DraftRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "prompt": request.prompt,
            "n": request.n,
            "seed": request.drafting_seed,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "logprobs": 1,
        }
        if request.grammar is not None:
            body["structured_outputs"] = {"grammar": request.grammar}
        return body

    async def generate(self, request: DraftRequest) -> Drafts:
        started = time.perf_counter()
        payload = await self._client.complete(self._body(request), request.timeout_s)
        drafts = parse_completions(payload)
        return Drafts(
            drafts=drafts.drafts,
            model=drafts.model,
            latency_ms=(time.perf_counter() - started) * 1000,
            completion_tokens=drafts.completion_tokens,
        )

    async def check_health(self) -> bool:
        return await self._client.check_health()

    async def aclose(self) -> None:
        await self._client.aclose()


def parse_completions(payload: dict[str, Any]) -> Drafts:
    """Parses a completions answer; anything off the documented shape is LLM_BAD_RESPONSE."""
    try:
        choices = payload["choices"]
        drafts: list[Draft] = []
        for choice in choices:
            text = choice["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
            logprobs = choice.get("logprobs") or {}
            token_logprobs = [
                float(x) for x in logprobs.get("token_logprobs") or [] if x is not None
            ]
            drafts.append(
                Draft(
                    text=text.strip(),
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
        raise LLMError(f"malformed LLM answer: {exc!r}"[:300], LLM_BAD_RESPONSE) from exc
