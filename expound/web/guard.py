"""Who calls over HTTP, and may they: the request id and the same access control as gRPC.

Each request gets its request id (``x-request-id`` if the caller sent a printable one, else a
fresh one), echoed in the answer's ``x-request-id`` header and every error body. An endpoint
names the RPC it mirrors; :class:`Guard` authenticates the caller with the server's one
:class:`~expound.server.auth.AccessControl` (the same tokens file, JWT issuer and policy:
roles per RPC, default deny, ``what_if`` and ``own_records`` grants) and answers 401 or 403
exactly as gRPC answers UNAUTHENTICATED or PERMISSION_DENIED: the reason is logged, never
sent.

Credentials: the JSON API reads only ``Authorization: Bearer <token>``, so no cookie can
make a browser call it on someone's behalf (no CSRF). The pages also accept the token from
their login cookie (:data:`SESSION_COOKIE`: HttpOnly, SameSite=Strict, Secure over TLS),
and serve only reads. With a client CA, the HTTP port requires a client certificate as the
gRPC port does, and without a bearer header its identity names the caller, as on gRPC (the
certificate reaches the app as the ASGI TLS extension: :mod:`expound.web.peers`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, cast

import grpc
from fastapi import Request

from expound.calling import ANONYMOUS, request_id_var
from expound.errors import Unauthenticated
from expound.pipeline.records import Caller
from expound.server.auth import AccessControl, AccessRefusal
from expound.server.errors import CallDone, _printable_id
from expound.server.policy import METHOD_PREFIX, Access
from expound.web.errors import internal_response, log
from expound.web.peers import client_certificate

SESSION_COOKIE = "expound_session"
REQUEST_ID_HEADER = "x-request-id"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestIds:
    """ASGI middleware: the request id of every request, the report of every call, and the
    last line of defence.

    An exception no handler turned into an answer becomes the fixed 500 body here (logged
    with its traceback), so no traceback and no bare "Internal Server Error" leave. A call
    to an endpoint that mirrors an RPC is reported to ``call_done`` as the gRPC guard reports
    its calls (metrics under the RPC's name, the one log line per call), with the code its
    error handler recorded (OK when none did).
    """

    def __init__(self, app: ASGIApp, call_done: CallDone | None = None) -> None:
        self._app = app
        self._call_done = call_done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        sent = [
            value.decode("latin-1")
            for key, value in scope.get("headers", ())
            if key == REQUEST_ID_HEADER.encode()
        ]
        request_id = sent[0] if sent and _printable_id(sent[0]) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        token = request_id_var.set(request_id)
        began = time.perf_counter()
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k != REQUEST_ID_HEADER.encode()
                ]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        except Exception as error:
            log.error("unexpected error, request id %s", request_id, exc_info=error)
            state["code"] = "INTERNAL"
            if not started:
                await internal_response(request_id)(scope, receive, send)
        finally:
            rpc = state.get("rpc")
            if self._call_done is not None and rpc:
                peer = _Credentials([], _peer_of(scope))
                context = cast(grpc.aio.ServicerContext, peer)
                code = state.get("code", "OK")
                self._call_done(METHOD_PREFIX + rpc, code, began, None, context, request_id)
            request_id_var.reset(token)


@dataclass(frozen=True)
class HttpCall:
    """An admitted HTTP call: who, which request, what its role grants."""

    principal: str
    request_id: str
    own_records_only: bool = False
    what_if_allowed: bool = True

    @property
    def caller(self) -> Caller:
        """The call as the record service and its access log know it."""
        return Caller(self.principal, self.request_id, self.own_records_only)


class _Credentials:
    """The parts of a gRPC call context that :class:`AccessControl` reads, from HTTP."""

    def __init__(self, authorization: list[str], peer: str, certificate: bytes = b"") -> None:
        self._authorization = authorization
        self._peer = peer
        self._certificate = certificate

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return tuple(("authorization", value) for value in self._authorization)

    def auth_context(self) -> dict[str, list[bytes]]:
        # gRPC's name for the peer's verified certificate (PEM), which AccessControl reads.
        return {"x509_pem_cert": [self._certificate]} if self._certificate else {}

    def peer(self) -> str:
        return self._peer


def _peer_of(scope: Scope) -> str:
    client = scope.get("client")
    return f"http:{client[0]}:{client[1]}" if client else "http:unknown"


class Guard:
    """Admits HTTP calls with the server's access control (None: authentication off)."""

    def __init__(self, access: AccessControl | None) -> None:
        self.access = access

    @property
    def login_required(self) -> bool:
        """Whether callers must present a credential."""
        return self.access is not None

    def admit(self, request: Request, rpc: str, cookie: bool = False) -> HttpCall:
        """Authenticates ``request`` and checks ``rpc`` (e.g. "GetRecord") against its roles.

        Args:
            request: The HTTP request.
            rpc: The RPC the endpoint mirrors; the policy's grants for it apply.
            cookie: Also accept the pages' session cookie (pages only).

        Raises:
            Unauthenticated: No valid credential.
            PermissionDenied: No role of the caller grants ``rpc``.
        """
        request_id = str(request.state.request_id)
        request.state.rpc = rpc  # the call is reported under it, refused or not
        if self.access is None:
            return HttpCall(ANONYMOUS, request_id)
        authorization = request.headers.getlist("authorization")
        if not authorization and cookie and request.cookies.get(SESSION_COOKIE):
            authorization = [f"Bearer {request.cookies[SESSION_COOKIE]}"]
        # AccessControl reads three methods of a gRPC context; _Credentials has them.
        credentials = _Credentials(
            authorization, _peer_of(request.scope), client_certificate(request.scope)
        )
        context = cast(grpc.aio.ServicerContext, credentials)
        principal, granted, what_if = self.access.authorize(METHOD_PREFIX + rpc, context)
        return HttpCall(principal, request_id, granted is Access.OWN, what_if)

    def check_token(self, token: str) -> str:
        """The principal of a bearer token (the pages' login).

        Raises:
            Unauthenticated: The token is not valid.
        """
        if self.access is None:
            return ANONYMOUS
        context = cast(grpc.aio.ServicerContext, _Credentials([f"Bearer {token}"], "login"))
        try:
            return self.access.authenticate(context).principal
        except AccessRefusal as refused:
            raise Unauthenticated() from refused
