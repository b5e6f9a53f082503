"""Certificates, tokens, JWTs and policies made at test time, for the security tests.

The certificates come from the same code as ``scripts/make_test_ca.py`` (one CA per test
directory, ECDSA P-256); tokens from :mod:`expound.server.tokens`; JWTs are signed with a
fresh Ed25519 issuer key by PyJWT.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from expound.server.policy import DEFAULT_POLICY
from expound.server.tokens import new_token, token_line
from scripts.make_test_ca import (
    Issued,
    client_certificate,
    make_ca,
    server_certificate,
    spiffe_id,
    write_pair,
)

ROLES = ("decider", "analyst", "auditor", "records-admin", "operator")
ISSUER = "https://idp.expound.test"
AUDIENCE = "expound"


@dataclass
class Pki:
    """A test CA with its server certificate, written to ``directory``."""

    directory: Path
    ca: Issued = field(default_factory=make_ca)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_file, _ = write_pair(self.ca, self.directory, "ca")
        self.server_cert, self.server_key = write_pair(
            server_certificate(self.ca), self.directory, "server"
        )

    def client(self, principal: str, expired: bool = False) -> tuple[Path, Path]:
        """A client certificate for ``principal``: (certificate file, key file)."""
        issued = client_certificate(self.ca, principal, expired=expired)
        stem = f"client-{principal}{'-expired' if expired else ''}"
        return write_pair(issued, self.directory, stem)

    def expired_server(self) -> tuple[Path, Path]:
        """A server certificate of this CA that expired yesterday."""
        return write_pair(server_certificate(self.ca, expired=True), self.directory, "old-server")

    def channel_credentials(self, principal: str | None = None) -> grpc.ChannelCredentials:
        """Credentials trusting this CA, with ``principal``'s client certificate if given."""
        key = cert = None
        if principal is not None:
            cert_file, key_file = self.client(principal)
            cert, key = cert_file.read_bytes(), key_file.read_bytes()
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_file.read_bytes(), private_key=key, certificate_chain=cert
        )


def write_policy(path: Path, principals: dict[str, list[str]]) -> Path:
    """The shipped default policy with a ``[principals]`` table of ``principals``."""
    shipped = DEFAULT_POLICY.read_text(encoding="utf-8")
    roles_only = shipped.split("\n[principals]\n")[0]
    # A JSON string or array of strings is also a TOML one.
    lines = [f"{json.dumps(name)} = {json.dumps(roles)}" for name, roles in principals.items()]
    path.write_text(roles_only + "\n[principals]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_tokens(path: Path, principals: list[str]) -> dict[str, str]:
    """A tokens file with one fresh token per principal; returns principal -> token."""
    tokens = {principal: new_token() for principal in principals}
    path.write_text(
        "# test tokens\n" + "".join(token_line(p, t) + "\n" for p, t in tokens.items()),
        encoding="utf-8",
    )
    return tokens


@dataclass
class Issuer:
    """A JWT issuer with an Ed25519 key; ``public_key_file`` is what the server trusts."""

    directory: Path

    def __post_init__(self) -> None:
        self.key = ed25519.Ed25519PrivateKey.generate()
        self.public_key_file = self.directory / "issuer.pub.pem"
        self.public_key_file.write_bytes(
            self.key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def token(self, subject: str, **claims: Any) -> str:
        """A signed JWT for ``subject``, valid for five minutes; ``claims`` override."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        body.update(claims)
        return jwt.encode(body, self.key, algorithm="EdDSA")


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying ``token``."""
    return (("authorization", f"Bearer {token}"),)


__all__ = [
    "AUDIENCE",
    "ISSUER",
    "ROLES",
    "Issuer",
    "Pki",
    "bearer",
    "spiffe_id",
    "write_policy",
    "write_tokens",
]
