"""The client certificate of an HTTPS connection, handed to the app as the ASGI TLS extension.

With a client CA, the HTTP port's handshake requires a certificate that CA signed, as the
gRPC port's does; on gRPC its identity names the caller. uvicorn checks the certificate
but gives the application no trace of it (encode/uvicorn#745; the ASGI TLS extension is
not implemented as of 0.54), so an mTLS-only deployment had every HTTP call refused as
unauthenticated. :func:`with_tls_extension` wraps uvicorn's HTTP protocol class so that
every request of a TLS connection carries ``scope["extensions"]["tls"]`` as the ASGI TLS
extension (version 0.2) describes it: ``client_cert_chain`` (the verified leaf, PEM; the
ssl module exposes only the leaf before Python 3.13), ``tls_version`` and ``cipher_suite``
as the ssl module names them (the spec's integer codes are not exposed by it),
``server_cert`` and ``client_cert_error`` None (a certificate that fails verification ends
the handshake, so no request carries one). A server that fills the extension itself
keeps its own.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

TLS_EXTENSION = "tls"


class _TlsScope:
    """The app, with one connection's TLS facts added to each HTTP request's scope."""

    def __init__(self, app: ASGIApp, tls: dict[str, Any]) -> None:
        self._app = app
        self._tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            extensions = scope.setdefault("extensions", {})
            extensions.setdefault(TLS_EXTENSION, dict(self._tls))
        await self._app(scope, receive, send)


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ASGI TLS extension's fields for one handshaken connection."""
    der = ssl_object.getpeercert(binary_form=True)
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": ssl_object.version(),
        "cipher_suite": cipher[0] if cipher else None,
    }


def with_tls_extension(protocol: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """``protocol`` (uvicorn's HTTP protocol class, which keeps the app in ``self.app``),
    adding the TLS extension to the scope of every request on a TLS connection."""

    class TlsExtensionProtocol(protocol):  # type: ignore[valid-type,misc]
        app: ASGIApp

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                self.app = _TlsScope(self.app, tls_extension(ssl_object))

    TlsExtensionProtocol.__name__ = TlsExtensionProtocol.__qualname__ = (
        f"TlsExtension{protocol.__name__}"
    )
    return TlsExtensionProtocol


def client_certificate(scope: Scope) -> bytes:
    """The client certificate (PEM) of the request's connection; empty bytes for none."""
    tls = scope.get("extensions", {}).get(TLS_EXTENSION) or {}
    chain = tls.get("client_cert_chain") or []
    return str(chain[0]).encode("ascii") if chain else b""
