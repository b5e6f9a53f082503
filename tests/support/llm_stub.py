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
    "hang",
    "drop",
    "garbage",
    "wrong_shape",
    "http_500",
    "many_choices",
    "huge_choices",
    "choose",
    "scripted",
    "not_a_string",
    "long_choice",
    "overused",
]
# "choose": a well-behaved server for jump-forward drafting: /tokenize by the fake word
# tokenizer, and completions under a ``choice`` structured output by the fake's seeded rule
# (expound.generators.fake), ``token_ids`` where asked.
# "many_choices": 2,000 short choices whatever was asked; "huge_choices": four choices of
# 7.5 MB each, written in chunks so the stub itself holds little.
# Answers take the shape of the endpoint asked: completions' ``choices[i].text`` or chat's
# ``choices[i].message.content`` (``/v1/chat/completions``).
# "scripted": a well-behaved server answering ``n`` of the scripted ``texts`` per request
# (handed out in order across requests), one logprob per word; "not_a_string": a choice
# whose text is a number; "long_choice": a choice reporting more tokens than
# ``max_tokens``; "overused": usage of more completion tokens than ``n * max_tokens``.
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


def _is_chat(first_line: str) -> bool:
    return first_line.startswith("POST /v1/chat/completions")


def _choice(chat: bool, index: int, text: object, logprobs: list[float]) -> dict[str, Any]:
    """One choice in the endpoint's shape, with one logprob per token."""
    if chat:
        return {
            "index": index,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
            "logprobs": {"content": [{"token": "w", "logprob": lp} for lp in logprobs]},
        }
    return {
        "index": index,
        "text": text,
        "finish_reason": "stop",
        "logprobs": {"token_logprobs": logprobs},
    }


def _misbehaving(behaviour: Behaviour, chat: bool, body: dict[str, Any]) -> dict[str, Any]:
    """The answer of a behaviour that breaks one bound or shape of the API."""
    n, max_tokens = int(body.get("n", 1)), int(body.get("max_tokens", 16))
    if behaviour == "not_a_string":
        return {"choices": [_choice(chat, 0, 42, [-0.1])]}
    if behaviour == "long_choice":
        return {"choices": [_choice(chat, 0, "Declined.", [-0.1] * (max_tokens + 1))]}
    if behaviour == "overused":
        usage = {"prompt_tokens": 10, "completion_tokens": n * max_tokens + 1}
        return {"choices": [_choice(chat, 0, "Declined.", [-0.1])], "usage": usage}
    if behaviour == "wrong_shape":
        return {"choices": [{"message": {"role": "assistant"}} if chat else {"txt": "no text"}]}
    # "many_choices"
    return {
        "choices": [
            _choice(chat, i, "Your application was declined.", [-0.1]) for i in range(MANY_CHOICES)
        ]
    }


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
    texts: list[str] | None = None,
) -> AsyncIterator[str]:
    """Serves ``behaviour`` for completions and chat completions (health answers 200);
    yields the base URL.

    ``hung_up`` is set when the client closes a request the stub hangs on (the caller's
    work was cancelled); ``bodies`` receives each request's JSON body with its ``path``
    ("choose", "scripted"); ``texts`` are what "scripted" answers.
    """
    requests = 0
    scripted = list(texts or [])

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
                elif behaviour == "scripted":
                    asked = json.loads(body)
                    if bodies is not None:
                        bodies.append({"path": first_line.split()[1], **asked})
                    taken = scripted[: int(asked.get("n", 1))]
                    del scripted[: len(taken)]
                    chat = _is_chat(first_line)
                    choices = [
                        _choice(chat, i, t, [-0.25] * len(t.split())) for i, t in enumerate(taken)
                    ]
                    usage = {
                        "prompt_tokens": 100,
                        "completion_tokens": sum(len(t.split()) for t in taken),
                    }
                    answer = {"model": "stub", "choices": choices, "usage": usage}
                    writer.write(_response("200 OK", json.dumps(answer).encode()))
                elif behaviour in ("not_a_string", "long_choice", "overused", "wrong_shape"):
                    answer = _misbehaving(behaviour, _is_chat(first_line), json.loads(body))
                    writer.write(_response("200 OK", json.dumps(answer).encode()))
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
                    answer = _misbehaving(behaviour, _is_chat(first_line), {})
                    writer.write(_response("200 OK", json.dumps(answer).encode()))
                elif behaviour == "huge_choices":
                    await _write_huge_choices(writer)
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
