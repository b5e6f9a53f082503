"""One client for an OpenAI-compatible completions API, as served by vLLM.

Drafting and the rubric judge both talk to the LLM through :class:`CompletionsClient`.
Every failure is translated here, at the boundary, into an :class:`LLMError` whose reason
the record keeps: connection refused or reset -> LLM_UNAVAILABLE; timeout ->
DEADLINE_EXCEEDED; an HTTP error or an answer that is not JSON -> LLM_BAD_RESPONSE.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from expound.errors import LLMError

# Fallback reasons recorded when the LLM gives no usable answer.
LLM_UNAVAILABLE = "LLM_UNAVAILABLE"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
LLM_BAD_RESPONSE = "LLM_BAD_RESPONSE"


class CompletionsClient:
    """Posts ``/v1/completions`` requests, at most ``max_concurrency`` at a time."""

    def __init__(
        self,
        base_url: str,
        api_key: str = "",
        max_concurrency: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        label: str = "LLM",
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, transport=transport
        )
        self._slots = asyncio.Semaphore(max_concurrency)
        self._label = label  # names the caller in error messages ("LLM", "judge")

    async def complete(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """The JSON answer to one completions request.

        Raises:
            LLMError: unreachable, too slow, an HTTP error or an answer that is not a JSON
                object; the reason says which.
        """
        label = self._label
        try:
            async with asyncio.timeout(timeout_s), self._slots:
                response = await self._client.post("/v1/completions", json=body, timeout=timeout_s)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LLMError(f"{label} call exceeded {timeout_s:.1f} s", DEADLINE_EXCEEDED) from exc
        except httpx.TransportError as exc:
            raise LLMError(f"{label} unreachable: {type(exc).__name__}", LLM_UNAVAILABLE) from exc
        if response.status_code != 200:
            raise LLMError(
                f"{label} answered HTTP {response.status_code}: {response.text[:200]}",
                LLM_BAD_RESPONSE,
            )
        try:
            payload = response.json()
        except ValueError as exc:
            raise LLMError(f"{label} answered non-JSON: {exc!r}"[:300], LLM_BAD_RESPONSE) from exc
        if not isinstance(payload, dict):
            raise LLMError(f"{label} answered a JSON {type(payload).__name__}", LLM_BAD_RESPONSE)
        return payload

    async def check_health(self) -> bool:
        """True when the server's ``/health`` answers 200."""
        try:
            response = await self._client.get("/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        """Closes the HTTP connections."""
        await self._client.aclose()
