"""A misbehaving OpenAI-compatible server on loopback, for the LLM fault tests only.

Real HTTP over a real socket, so the generator's own client, timeouts and parsing are
what is tested; only the far end misbehaves on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Literal

Behaviour = Literal["hang", "drop", "garbage", "wrong_shape", "http_500"]


async def _read_request(reader: asyncio.StreamReader) -> str:
    head = await reader.readuntil(b"\r\n\r\n")
    first_line = head.split(b"\r\n", 1)[0].decode()
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return first_line


def _response(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


@contextlib.asynccontextmanager
async def llm_stub(behaviour: Behaviour) -> AsyncIterator[str]:
    """Serves ``behaviour`` for completions (health answers 200); yields the base URL."""
    requests = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        try:
            first_line = await _read_request(reader)
            if first_line.startswith("GET /health"):
                writer.write(_response("200 OK", b""))
            else:
                requests += 1
                if behaviour == "hang":
                    await asyncio.sleep(3600)
                elif behaviour == "drop":
                    writer.transport.abort()  # killed mid-request: no answer at all
                    return
                elif behaviour == "garbage":
                    writer.write(_response("200 OK", b"<html>not json</html>"))
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


def free_port() -> int:
    """A loopback port with nothing listening on it (for "vLLM stopped")."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
