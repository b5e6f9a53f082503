"""The HTTP/JSON face: a FastAPI app over the server's own pipeline, records and access
control, served by uvicorn on the gRPC server's event loop.

:func:`build_app` makes the app from a :class:`~expound.web.api.Service`;
:func:`serving_http` runs it on ``EXPOUND_HOST:EXPOUND_HTTP_PORT`` with the gRPC port's TLS
settings (certificate and key; a client CA makes client certificates required) until its
block ends, then drains it for the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

import expound
from expound.archive.checkpoint import load_private_key
from expound.errors import ServiceError
from expound.models.registry import ModelRegistry
from expound.observability.telemetry import Telemetry
from expound.pipeline.explain import Pipeline
from expound.pipeline.records import RecordService
from expound.server.auth import AccessControl
from expound.server.errors import CallDone
from expound.server.reloading import ModelReloader
from expound.settings import Settings
from expound.web import api, docs, pages, peers
from expound.web.errors import on_http_error, on_invalid_request, on_service_error
from expound.web.guard import Guard, RequestIds


def build_app(service: api.Service, call_done: CallDone | None = None) -> FastAPI:
    """The app serving ``service``: the JSON API under ``/v1``, pages under ``/ui``, the
    API's docs at ``/docs`` and ``/redoc`` (self-hosted: :mod:`expound.web.docs`); each
    call to an endpoint that mirrors an RPC is reported to ``call_done`` (the server's
    telemetry: metrics and the one log line per call, as for gRPC calls)."""
    app = FastAPI(
        title="expound",
        version=expound.__version__,
        description=(
            "Explanations of credit decisions, archived in a verifiable log. The JSON face "
            "of the gRPC service expound.v1.ExplainService: same pipeline, records and roles. "
            "Authenticate with `Authorization: Bearer <token>`; every answer carries "
            "`x-request-id`."
        ),
        # FastAPI's own docs pages load their code from a CDN; docs.docs_router serves ours.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=docs.STATIC), name="static")
    app.include_router(docs.docs_router(app))
    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_middleware(RequestIds, call_done=call_done)

    async def home() -> RedirectResponse:
        return RedirectResponse("/ui/records", status_code=303)

    # "/ui" is the address the server prints at start: it and "/" open the record search.
    for path in ("/", "/ui", "/ui/"):
        app.add_api_route(path, home, methods=["GET"], include_in_schema=False)

    def openapi() -> dict[str, Any]:
        # Request validation answers 400 with ErrorBody (documented per endpoint), never
        # FastAPI's 422: drop the 422 it documents by default.
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path in document["paths"].values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            for unused in ("HTTPValidationError", "ValidationError"):
                document.get("components", {}).get("schemas", {}).pop(unused, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


@contextlib.asynccontextmanager
async def http_face(
    settings: Settings,
    pipeline: Pipeline,
    records: RecordService,
    registry: ModelRegistry,
    reloader: ModelReloader,
    access: AccessControl | None,
    telemetry: Telemetry | None = None,
) -> AsyncIterator[int]:
    """The HTTP face over the server's own objects, served until the block ends; yields
    its port.

    Raises:
        OSError: The address cannot be bound.
        ValueError: A TLS file cannot be used.
    """
    service = api.Service(
        pipeline, records, registry, reloader, Guard(access), log_public_key(settings)
    )
    call_done = telemetry.call_done if telemetry is not None else None
    async with serving_http(settings, build_app(service, call_done)) as port:
        yield port


def log_public_key(settings: Settings) -> Ed25519PublicKey | None:
    """The log's public key, for the record pages' proof check (None if unreadable here)."""
    try:
        return load_private_key(settings.signing_key_path).public_key()
    except (OSError, ValueError):
        return None


def _ssl_options(settings: Settings) -> dict[str, Any]:
    if settings.tls_cert_file is None:
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": str(settings.tls_cert_file),
        "ssl_keyfile": str(settings.tls_key_file),
    }
    if settings.tls_client_ca_file is not None:
        options["ssl_ca_certs"] = str(settings.tls_client_ca_file)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted connections, which otherwise hold a response's body behind
        # its headers until the client's delayed ACK: 40 ms on every call (measured).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server inside the service: the service handles SIGINT and SIGTERM (and
    stops this server in order); uvicorn must not take the signals over."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving_http(settings: Settings, app: FastAPI) -> AsyncIterator[int]:
    """Serves ``app`` on ``settings.host:settings.http_port``; yields the bound port.

    Raises:
        OSError: The address cannot be bound.
        ValueError: A TLS file cannot be used.
    """
    sock = _bound_socket(settings.host, settings.http_port)
    config = uvicorn.Config(
        app,
        log_config=None,  # the service's own logging (JSON lines) is already set up
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=max(1, round(settings.grace_seconds)),
        **_ssl_options(settings),
    )
    try:
        config.load()  # reads the TLS files now: a bad one is a start-up error
    except (OSError, ssl.SSLError) as error:
        sock.close()
        raise ValueError(f"HTTP port TLS (EXPOUND_TLS_CERT_FILE/KEY_FILE): {error}") from error
    # The client certificate reaches the app (uvicorn does not pass it on by itself).
    config.http_protocol_class = peers.with_tls_extension(config.http_protocol_class)
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # re-raises why it stopped
                raise OSError("the HTTP server stopped while starting")
            await asyncio.sleep(0.01)
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
