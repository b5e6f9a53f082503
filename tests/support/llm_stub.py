"""A misbehaving OpenAI-compatible server on loopback, for the LLM fault tests only.

Real HTTP over a real socket, so the generator's own client, timeouts and parsing are
what is tested; only the far end misbehaves on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from expound.generators.base import ChoiceRequest
from expound.generators.fake import FAKE_END_TOKEN, fake_choice, fake_tokens

Behaviour = Literal[
    "hang", "drop", "garbage", "wrong_shape", "http_500", "many_choices", "huge_choices", "choose"
]
# "choose": a well-behaved server for jump-forward drafting: /tokenize by the fake word
# tokenizer, and completions under a ``choice`` structured output by the fake's seeded rule
# (expound.generators.fake), ``token_ids`` where asked.
# "many_choices": 2,000 short choices whatever was asked; "huge_choices": four choices of
# 7.5 MB each, written in chunks so the stub itself holds little.
MANY_CHOICES = 2000
HUGE_CHOICE_BYTES = 7_500_000
CHUNK = b"x" * 65536


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    first_line = head.split(b"\r\n", 1)[0].decode()
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return first_line, body


def _chosen(first_line: str, body: dict[str, Any]) -> dict[str, Any]:
    """The "choose" behaviour's answer to one request."""
    if first_line.startswith("POST /tokenize"):
        return {"tokens": list(fake_tokens(body["prompt"])), "count": 0}
    request = ChoiceRequest(
        prompt=body["prompt"],
        choices=tuple(body["structured_outputs"]["choice"]),
        max_tokens=body["max_tokens"],
        seed=body.get("seed", 0),
        temperature=body.get("temperature", 1.0),
        timeout_s=1.0,
    )
    choice = fake_choice(request)
    answer: dict[str, Any] = {
        "index": 0,
        "text": choice.text,
        "finish_reason": choice.finish_reason,
        "logprobs": {"token_logprobs": choice.token_logprobs},
    }
    if body.get("return_token_ids"):
        answer["token_ids"] = [*fake_tokens(choice.text), FAKE_END_TOKEN]
    usage = {
        "prompt_tokens": len(fake_tokens(request.prompt)),
        "completion_tokens": choice.completion_tokens,
    }
    return {"model": "stub", "choices": [answer], "usage": usage}


def _response(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


async def _write_huge_choices(writer: asyncio.StreamWriter) -> None:
    text_bytes = HUGE_CHOICE_BYTES // len(CHUNK) * len(CHUNK)
    parts = [f'{{"index": {i}, "finish_reason": "stop", "text": "' for i in range(4)]
    length = len('{"choices": [') + sum(len(p) + text_bytes + 2 for p in parts) + 2 * 3 + 2
    writer.write(
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode()
    )
    writer.write(b'{"choices": [')
    for i, part in enumerate(parts):
        writer.write(part.encode())
        for _ in range(text_bytes // len(CHUNK)):
            writer.write(CHUNK)
            await writer.drain()
        writer.write(b'"}' + (b", " if i < 3 else b""))
    writer.write(b"]}")


@contextlib.asynccontextmanager
async def llm_stub(
    behaviour: Behaviour,
    hung_up: asyncio.Event | None = None,
    bodies: list[dict[str, Any]] | None = None,
) -> AsyncIterator[str]:
    """Serves ``behaviour`` for completions (health answers 200); yields the base URL.

    ``hung_up`` is set when the client closes a request the stub hangs on (the caller's
    work was cancelled); ``bodies`` receives each request's JSON body ("choose").
    """
    requests = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        try:
            first_line, body = await _read_request(reader)
            if first_line.startswith("GET /health"):
                writer.write(_response("200 OK", b""))
            else:
                requests += 1
                if behaviour == "choose":
                    asked = json.loads(body)
                    if bodies is not None:
                        bodies.append({"path": first_line.split()[1], **asked})
                    writer.write(
                        _response("200 OK", json.dumps(_chosen(first_line, asked)).encode())
                    )
                elif behaviour == "hang":
                    # Never answers; reading returns b"" once the client closes.
                    await reader.read()
                    if hung_up is not None:
                        hung_up.set()
                    return
                elif behaviour == "drop":
                    writer.transport.abort()  # killed mid-request: no answer at all
                    return
                elif behaviour == "garbage":
                    writer.write(_response("200 OK", b"<html>not json</html>"))
                elif behaviour == "many_choices":
                    choice = {"text": "Your application was declined.", "finish_reason": "stop"}
                    choices = [{**choice, "index": i} for i in range(MANY_CHOICES)]
                    writer.write(_response("200 OK", json.dumps({"choices": choices}).encode()))
                elif behaviour == "huge_choices":
                    await _write_huge_choices(writer)
                elif behaviour == "wrong_shape":
                    body = json.dumps({"choices": [{"txt": "no text field"}]}).encode()
                    writer.write(_response("200 OK", body))
                else:
                    writer.write(_response("500 Internal Server Error", b'{"error": "boom"}'))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in asyncio.all_tasks():
            if task.get_coro().__qualname__.startswith("llm_stub.<locals>.handle"):  # type: ignore[union-attr]
                task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)
