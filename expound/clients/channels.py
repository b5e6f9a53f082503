"""How a client reaches a server: TLS options, the bearer token and the metadata of each call.

Written once for both clients: :func:`open_channel` dials a synchronous channel,
:func:`open_aio_channel` an asyncio one, from the same :class:`ChannelSecurity`; and
:class:`CallMetadata` is what every call carries (the token, the caller's own headers, a
request id the server logs and echoes in errors).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

__all__ = [
    "CallMetadata",
    "ChannelSecurity",
    "open_aio_channel",
    "open_channel",
]

# gRPC's rule for metadata keys (lower case; "-bin" keys carry bytes); "grpc-" is reserved.
_HEADER_KEY = re.compile(r"[0-9a-z_.\-]+")
# The server's own rule for a request id it accepts from a caller (printable ASCII, bounded).
_MAX_REQUEST_ID = 128


@dataclass(frozen=True)
class ChannelSecurity:
    """How a client proves the server and itself: TLS, a client certificate, a token.

    TLS is on when ``tls_ca`` or ``cert`` is set, or ``tls`` is asked for; with no
    ``tls_ca`` the system's CAs are trusted.

    Attributes:
        tls_ca: PEM file of the CA(s) that signed the server's certificate.
        cert: PEM file of this client's certificate (mTLS); goes with ``key``.
        key: PEM file of this client's private key.
        token: A bearer token (static or a JWT), sent as ``authorization: Bearer ...``.
        server_name: The name to expect in the server's certificate when it differs from
            the target's host (e.g. dialing an IP address, or through a tunnel).
        use_tls: TLS even without ``tls_ca`` or ``cert`` (the system's CAs).
    """

    tls_ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    token: str = ""
    server_name: str = ""
    use_tls: bool = False

    @property
    def tls(self) -> bool:
        """Whether the channel speaks TLS."""
        return self.use_tls or self.tls_ca is not None or self.cert is not None

    def credentials(self) -> grpc.ChannelCredentials:
        """The TLS credentials of a channel (only meaningful when :attr:`tls`).

        Raises:
            ValueError: A file that cannot be read; the message names the option.
        """
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.tls_ca, "--tls-ca") if self.tls_ca else None,
            private_key=_read(self.key, "--key") if self.key else None,
            certificate_chain=_read(self.cert, "--cert") if self.cert else None,
        )

    def options(self) -> list[tuple[str, str]]:
        """The channel options TLS needs (the server name override)."""
        if self.server_name and self.tls:
            return [("grpc.ssl_target_name_override", self.server_name)]
        return []

    def check_target(self, target: str) -> None:
        """Refuses what cannot work or would leak: a certificate without its key (or the
        reverse), a token in clear to another host, a name override without TLS.

        Raises:
            ValueError: Naming the option.
        """
        if (self.cert is None) != (self.key is None):
            raise ValueError(
                "--cert and --key go together (EXPOUND_CLIENT_CERT, EXPOUND_CLIENT_KEY)"
            )
        if self.token and not self.tls and not _loopback_target(target):
            raise ValueError(
                f"--token: refusing to send a token in clear to {target}; give --tls-ca (or --cert)"
            )
        if self.server_name and not self.tls:
            raise ValueError("server_name: only meaningful over TLS (give tls_ca or use_tls)")


@dataclass(frozen=True)
class CallMetadata:
    """The metadata every call of a client carries.

    Attributes:
        token: The bearer token (from :class:`ChannelSecurity`).
        headers: The caller's own headers (lower-case keys; ``-bin`` keys take bytes).
        request_id: Sent as ``x-request-id``: the server logs it and names it in errors.
    """

    token: str = ""
    headers: Mapping[str, str | bytes] = field(default_factory=dict)
    request_id: str = ""

    def __post_init__(self) -> None:
        for key, value in self.headers.items():
            if not _HEADER_KEY.fullmatch(key) or key.startswith("grpc-"):
                raise ValueError(
                    f"header {key!r}: keys are lower-case letters, digits, '-', '_' or '.', "
                    "and 'grpc-' is reserved"
                )
            if key in {"authorization", "x-request-id"}:
                raise ValueError(f"header {key!r}: pass it as the token or the request id")
            if key.endswith("-bin") != isinstance(value, bytes):
                raise ValueError(f"header {key!r}: '-bin' keys take bytes, other keys text")
            if isinstance(value, str) and not (value.isascii() and value.isprintable()):
                raise ValueError(f"header {key!r}: the value must be printable ASCII")
        rid = self.request_id
        if rid and not (rid.isascii() and rid.isprintable() and len(rid) <= _MAX_REQUEST_ID):
            raise ValueError(f"request id: printable ASCII, at most {_MAX_REQUEST_ID} characters")

    def pairs(self) -> tuple[tuple[str, str | bytes], ...]:
        """The metadata as gRPC takes it."""
        pairs: list[tuple[str, str | bytes]] = list(self.headers.items())
        if self.token:
            pairs.append(("authorization", f"Bearer {self.token}"))
        if self.request_id:
            pairs.append(("x-request-id", self.request_id))
        return tuple(pairs)


def _read(path: Path, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"{option} {path}: {error.strerror or error}") from error


def _loopback_target(target: str) -> bool:
    host = target.rsplit(":", 1)[0].strip("[]") if ":" in target else target
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_channel(target: str, security: ChannelSecurity | None = None) -> grpc.Channel:
    """A synchronous channel to ``target``: plaintext or TLS (with a client certificate).

    Raises:
        ValueError: Naming the option: a certificate without its key (or the reverse), a
            file that cannot be read, or a token that would travel in clear to another host.
    """
    security = security or ChannelSecurity()
    security.check_target(target)
    if security.tls:
        return grpc.secure_channel(target, security.credentials(), options=security.options())
    return grpc.insecure_channel(target)


def open_aio_channel(target: str, security: ChannelSecurity | None = None) -> grpc.aio.Channel:
    """An asyncio channel to ``target``, as :func:`open_channel` dials a synchronous one.

    Raises:
        ValueError: As :func:`open_channel`.
    """
    security = security or ChannelSecurity()
    security.check_target(target)
    if security.tls:
        return grpc.aio.secure_channel(target, security.credentials(), options=security.options())
    return grpc.aio.insecure_channel(target)
