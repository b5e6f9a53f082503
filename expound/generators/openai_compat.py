"""Drafting through an OpenAI-compatible completions API, as served by vLLM.

The same client serves a GPU deployment (`vllm serve MODEL`, or replicas behind a router)
and the embedded CPU server. Every failure is translated here, at the boundary, into a
:class:`GeneratorError` whose reason the record keeps: connection refused or reset ->
LLM_UNAVAILABLE; timeout -> DEADLINE_EXCEEDED; an answer that is not the documented JSON
shape, or an HTTP error -> LLM_BAD_RESPONSE.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from expound.errors import GeneratorError
from expound.generators.base import (
    DEADLINE_EXCEEDED,
    LLM_BAD_RESPONSE,
    LLM_UNAVAILABLE,
    Draft,
    DraftRequest,
    Drafts,
)


def api_client(
    base_url: str, api_key: str = "", transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An HTTP client for an OpenAI-compatible server (bearer token if a key is set)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, transport=transport)


class OpenAICompatGenerator:
    """Drafts candidates with one `/v1/completions` request per decision."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        max_concurrency: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = api_client(base_url, api_key, transport)
        self._model = model
        self._slots = asyncio.Semaphore(max_concurrency)
        self.name = f"openai-compat:{model}"

    def _body(self, request: DraftRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "prompt": request.prompt,
            "n": request.n,
            "seed": request.seed,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "logprobs": 1,
        }
        if request.grammar is not None:
            body["structured_outputs"] = {"grammar": request.grammar}
        return body

    async def generate(self, request: DraftRequest) -> Drafts:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(request.timeout_s), self._slots:
                response = await self._client.post(
                    "/v1/completions", json=self._body(request), timeout=request.timeout_s
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise GeneratorError(
                f"LLM call exceeded {request.timeout_s:.1f} s", DEADLINE_EXCEEDED
            ) from exc
        except httpx.TransportError as exc:
            raise GeneratorError(f"LLM unreachable: {type(exc).__name__}", LLM_UNAVAILABLE) from exc
        if response.status_code != 200:
            raise GeneratorError(
                f"LLM answered HTTP {response.status_code}: {response.text[:200]}", LLM_BAD_RESPONSE
            )
        drafts = parse_completions(response)
        return Drafts(
            drafts=drafts.drafts,
            model=drafts.model,
            latency_ms=(time.perf_counter() - started) * 1000,
            completion_tokens=drafts.completion_tokens,
        )

    async def check_health(self) -> bool:
        try:
            response = await self._client.get("/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        await self._client.aclose()


def parse_completions(response: httpx.Response) -> Drafts:
    """Parses a completions answer; anything off the documented shape is LLM_BAD_RESPONSE."""
    try:
        payload = response.json()
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
        raise GeneratorError(f"malformed LLM answer: {exc!r}"[:300], LLM_BAD_RESPONSE) from exc
