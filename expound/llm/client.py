"""One client for an OpenAI-compatible completions API, as served by vLLM.

Drafting and the rubric judge both talk to the LLM through :class:`CompletionsClient`:
``/v1/completions`` (:meth:`~CompletionsClient.complete`) or, for instruct models with a
chat template, ``/v1/chat/completions`` (:meth:`~CompletionsClient.chat`).
Every failure is translated here, at the boundary, into an :class:`LLMError` whose reason
the record keeps: connection refused or reset -> LLM_UNAVAILABLE; timeout ->
DEADLINE_EXCEEDED; an HTTP error or an answer that is not JSON -> LLM_BAD_RESPONSE.

``base_url`` may name several servers (commas): :class:`expound.llm.pool.ServerPool` picks
one per request and a request that fails on one is sent to another within its deadline.

Everything read from the LLM is bounded by what was asked for, so a misbehaving server
costs a fallback, not memory or CPU: the body is streamed and dropped past
:func:`max_response_bytes`; more choices than asked (``n`` per prompt), more tokens in a
choice than ``max_tokens``, or more completion tokens in all than ``n * max_tokens`` are
LLM_BAD_RESPONSE (a chat choice's tokens are its ``logprobs.content`` entries).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import itertools
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from expound.errors import LLMError
from expound.llm.pool import PooledServer, ServerPool, ServerState, base_urls
from expound.observability.hooks import LLM_OK, NO_OBSERVER, Observer

logger = logging.getLogger("expound.llm")

# Fallback reasons recorded when the LLM gives no usable answer.
LLM_UNAVAILABLE = "LLM_UNAVAILABLE"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
LLM_BAD_RESPONSE = "LLM_BAD_RESPONSE"

# With other servers in rotation, one attempt gets at most this share of the time left,
# and a failed request is sent again only with at least MIN_RETRY_S left.
ATTEMPT_SHARE = 0.5
MIN_RETRY_S = 0.2

# The affinity key of the slot the current task drafts in ("" outside one).
_AFFINITY: contextvars.ContextVar[str] = contextvars.ContextVar("expound_llm_slot", default="")

# The answer's room: its envelope, and per token asked for the token's text, logprob, top
# logprobs and offset as vLLM writes them (about 70 bytes with logprobs=1; a chat token's
# ``logprobs.content`` entry, with its bytes, about 110), with margin.
ENVELOPE_BYTES = 64 * 1024
BYTES_PER_TOKEN = 512
COMPLETIONS_PATH = "/v1/completions"
CHAT_PATH = "/v1/chat/completions"


def choices_asked(body: dict[str, Any]) -> int:
    """How many choices a request asks for: ``n`` per prompt (a chat request has none,
    so ``n``)."""
    prompt = body.get("prompt")
    prompts = len(prompt) if isinstance(prompt, list) else 1
    return prompts * int(body.get("n", 1))


def max_response_bytes(body: dict[str, Any]) -> int:
    """The most bytes an honest answer to ``body`` needs."""
    return ENVELOPE_BYTES + choices_asked(body) * int(body["max_tokens"]) * BYTES_PER_TOKEN


def tls_transport(ca_file: Path | None) -> httpx.AsyncHTTPTransport | None:
    """A transport trusting ``ca_file`` (PEM) beside the system's CAs; None without one.

    Raises:
        ValueError: Naming ``EXPOUND_LLM_CA_FILE`` when the file cannot be read or parsed.
    """
    if ca_file is None:
        return None
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise ValueError(f"EXPOUND_LLM_CA_FILE {ca_file}: not a readable PEM CA bundle") from error
    return httpx.AsyncHTTPTransport(verify=context)


def sends_key_in_clear(base_url: str) -> bool:
    """True when a key sent to ``base_url`` would cross a network unencrypted.

    Plain ``http://`` is fine only to this machine (loopback address or ``localhost``).
    """
    parts = urlsplit(base_url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


class CompletionsClient:
    """Posts ``/v1/completions`` requests, at most ``max_concurrency`` calls at a time.

    A call is one request (:meth:`complete`), or several made inside one :meth:`slot`
    (jump-forward drafting: the requests of one Explain call share its place).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str = "",
        max_concurrency: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        label: str = "LLM",
        observer: Observer = NO_OBSERVER,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # One server, or a pool of them (base URLs separated by commas).
        self._pool = ServerPool(base_urls(base_url))
        self._client = httpx.AsyncClient(
            headers=headers, transport=observer.llm_transport(transport)
        )
        self._slots = asyncio.Semaphore(max_concurrency)
        self._slot_keys = itertools.count()
        self._label = label  # names the caller in error messages and metrics ("LLM", "judge")
        self._observer = observer

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Holds one of the ``max_concurrency`` places until exit (waits for one first).

        The requests made inside (in this task or tasks it starts) go to one server of the
        pool while it stays in rotation and not much busier than the others: they share a
        growing prompt, and that server's prefix cache holds it.
        """
        async with self._slots:
            key = f"slot-{next(self._slot_keys)}"
            token = _AFFINITY.set(key)
            try:
                yield
            finally:
                _AFFINITY.reset(token)
                self._pool.forget(key)

    async def complete(
        self, body: dict[str, Any], timeout_s: float, in_slot: bool = False
    ) -> dict[str, Any]:
        """The JSON answer to one completions request, reported to the observer.

        Args:
            body: the request.
            timeout_s: the most it may take, waiting for a place included.
            in_slot: the caller holds a place already (:meth:`slot`); none is taken.

        Raises:
            LLMError: unreachable, too slow, an HTTP error or an answer that is not a JSON
                object; the reason says which.
        """
        return await self._observed(COMPLETIONS_PATH, body, timeout_s, in_slot)

    async def chat(
        self, body: dict[str, Any], timeout_s: float, in_slot: bool = False
    ) -> dict[str, Any]:
        """The JSON answer to one chat completions request (``messages``: the server
        applies the model's chat template), reported to the observer.

        Bounded as :meth:`complete` is: no more choices than ``n``, no more tokens in a
        choice (``logprobs.content``) than ``max_tokens``, no more completion tokens in all
        than ``n * max_tokens``, no more bytes than an honest answer needs.

        Raises:
            LLMError: as :meth:`complete`.
        """
        return await self._observed(CHAT_PATH, body, timeout_s, in_slot)

    async def _observed(
        self, path: str, body: dict[str, Any], timeout_s: float, in_slot: bool
    ) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            payload = await self._complete(body, timeout_s, in_slot, path)
        except LLMError as error:
            self._observer.llm_call(self._label, time.perf_counter() - started, error.reason)
            raise
        usage = payload.get("usage")
        tokens = usage if isinstance(usage, dict) else {}
        self._observer.llm_call(
            self._label,
            time.perf_counter() - started,
            LLM_OK,
            _count(tokens.get("prompt_tokens")),
            _count(tokens.get("completion_tokens")),
        )
        return payload

    async def _complete(
        self, body: dict[str, Any], timeout_s: float, in_slot: bool, path: str = COMPLETIONS_PATH
    ) -> dict[str, Any]:
        label = self._label
        limit = max_response_bytes(body)
        try:
            async with asyncio.timeout(timeout_s):
                if in_slot:
                    status, content = await self._post(path, body, timeout_s, limit)
                else:
                    async with self._slots:
                        status, content = await self._post(path, body, timeout_s, limit)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LLMError(f"{label} call exceeded {timeout_s:.1f} s", DEADLINE_EXCEEDED) from exc
        except httpx.TransportError as exc:
            raise LLMError(f"{label} unreachable: {type(exc).__name__}", LLM_UNAVAILABLE) from exc
        if status != 200:
            raise LLMError(f"{label} answered HTTP {status}", LLM_BAD_RESPONSE)
        try:
            payload = json.loads(content)
        except ValueError as exc:
            raise LLMError(f"{label} answered non-JSON: {exc!r}"[:300], LLM_BAD_RESPONSE) from exc
        if not isinstance(payload, dict):
            raise LLMError(f"{label} answered a JSON {type(payload).__name__}", LLM_BAD_RESPONSE)
        _check_bounds(payload, body, label, chat=path == CHAT_PATH)
        return payload

    async def _post(
        self, path: str, body: dict[str, Any], timeout_s: float, limit: int
    ) -> tuple[int, bytes]:
        """The status and body of one POST to a server of the pool, read no further than
        ``limit`` bytes.

        A server that cannot be reached, times out or answers 5xx is taken out of rotation
        and the request goes to another while time is left: with other servers in
        rotation, one attempt gets at most half of what is left, so a hanging server
        leaves time for the next. The last failure is raised when none is left to try.
        """
        deadline = time.monotonic() + timeout_s
        tried: set[str] = set()
        while True:
            server = self._pool.choose(frozenset(tried), _AFFINITY.get())
            tried.add(server.url)
            left = deadline - time.monotonic()
            others = len(self._pool.servers) - len(tried)
            attempt_s = left * ATTEMPT_SHARE if others > 0 else left
            self._pool.started(server)
            started = time.monotonic()
            try:
                status, content = await self._post_to(
                    server.url + path, body, max(attempt_s, 0.001), limit
                )
            except (httpx.TransportError, TimeoutError) as error:
                self._failed(server, type(error).__name__)
                if others > 0 and deadline - time.monotonic() > MIN_RETRY_S:
                    continue
                raise
            except BaseException:
                self._pool.released(server)  # cancelled, or an answer over its bound
                raise
            if status >= 500:
                self._failed(server, f"HTTP {status}")
                if others > 0 and deadline - time.monotonic() > MIN_RETRY_S:
                    continue
            else:
                self._pool.answered(server, time.monotonic() - started)
            return status, content

    def _failed(self, server: PooledServer, error: str) -> None:
        self._pool.failed(server, error)
        if len(self._pool.servers) > 1:
            logger.warning(
                "%s server %s out of rotation for %.0f s: %s",
                self._label,
                server.url,
                max(0.0, server.down_until - time.monotonic()),
                error,
            )

    async def _post_to(
        self, url: str, body: dict[str, Any], timeout_s: float, limit: int
    ) -> tuple[int, bytes]:
        async with asyncio.timeout(timeout_s):
            return await self._stream(url, body, timeout_s, limit)

    async def _stream(
        self, url: str, body: dict[str, Any], timeout_s: float, limit: int
    ) -> tuple[int, bytes]:
        async with self._client.stream("POST", url, json=body, timeout=timeout_s) as response:
            if response.status_code != 200:
                # An error body is neither read nor kept: it may be large, and it is the
                # far end's words, not ours to archive.
                return response.status_code, b""
            content = bytearray()
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) > limit:
                    raise LLMError(f"{self._label} answer exceeded {limit} bytes", LLM_BAD_RESPONSE)
            return response.status_code, bytes(content)

    async def tokenize(self, text: str, timeout_s: float) -> tuple[int, ...] | None:
        """The model's tokens of ``text`` by vLLM's ``/tokenize`` (no special tokens).

        None when the server has no such endpoint or answers off its shape (another
        OpenAI-compatible server): tokens are an optimisation, not a need.

        Raises:
            LLMError: the server is unreachable or too slow.
        """
        body = {"prompt": text, "add_special_tokens": False}
        # The answer is a short list of integers: at most one token per byte of the text.
        limit = ENVELOPE_BYTES + 16 * len(text.encode())
        try:
            async with asyncio.timeout(timeout_s):
                status, content = await self._post("/tokenize", body, timeout_s, limit)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LLMError(
                f"{self._label} tokenize exceeded {timeout_s:.1f} s", DEADLINE_EXCEEDED
            ) from exc
        except httpx.TransportError as exc:
            raise LLMError(
                f"{self._label} unreachable: {type(exc).__name__}", LLM_UNAVAILABLE
            ) from exc
        except LLMError:
            return None  # longer than any honest answer: not used
        if status != 200:
            return None
        try:
            tokens = json.loads(content)["tokens"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(tokens, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in tokens
        ):
            return None
        return tuple(tokens)

    async def check_health(self) -> bool:
        """True when some server's ``/health`` answers 200; every server is probed, and a
        server out of rotation whose probe answers comes back into it."""
        healthy = await asyncio.gather(*(self._probe(s) for s in self._pool.servers))
        return any(healthy)

    async def _probe(self, server: PooledServer) -> bool:
        try:
            response = await self._client.get(server.url + "/health", timeout=2.0)
        except httpx.HTTPError:
            self._pool.probed(server, False)
            return False
        self._pool.probed(server, response.status_code == 200)
        return response.status_code == 200

    def servers(self) -> list[ServerState]:
        """Each server of the pool: in rotation or not, load, latency, last error."""
        return self._pool.states()

    async def aclose(self) -> None:
        """Closes the HTTP connections."""
        await self._client.aclose()


def _count(value: object) -> int:
    """A token count as the answer reported it; 0 for anything but a non-negative integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _choice_tokens(choice: object, chat: bool) -> object:
    """The tokens a choice reports: completions' ``logprobs.token_logprobs``, chat's
    ``logprobs.content`` (one entry per token)."""
    logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
    if not isinstance(logprobs, dict):
        return None
    return logprobs.get("content" if chat else "token_logprobs")


def _check_bounds(
    payload: dict[str, Any], body: dict[str, Any], label: str, chat: bool = False
) -> None:
    """Refuses an answer with more choices or tokens than ``body`` asked for."""
    asked, max_tokens = choices_asked(body), int(body["max_tokens"])
    choices = payload.get("choices")
    if isinstance(choices, list) and len(choices) > asked:
        raise LLMError(f"{label} answered {len(choices)} choices, {asked} asked", LLM_BAD_RESPONSE)
    for choice in choices if isinstance(choices, list) else ():
        tokens = _choice_tokens(choice, chat)
        if isinstance(tokens, list) and len(tokens) > max_tokens:
            raise LLMError(
                f"{label} answered {len(tokens)} tokens in a choice, at most {max_tokens} asked",
                LLM_BAD_RESPONSE,
            )
    usage = payload.get("usage")
    used = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if isinstance(used, int) and used > asked * max_tokens:
        raise LLMError(
            f"{label} used {used} completion tokens, at most {asked * max_tokens} asked",
            LLM_BAD_RESPONSE,
        )
