"""TLS on the gRPC port: the server's credentials from files, and a client certificate's identity.

Every file is read and checked at start-up, so a missing, unreadable or mismatched file is
one line naming its setting (raised as ``ValueError``; ``server/app.py`` makes it a
``StartupError``), not a failed handshake later. With ``EXPOUND_TLS_CLIENT_CA_FILE`` set,
clients must present a certificate that CA signed (mTLS); gRPC checks the chain and dates.

A client certificate's identity, the caller's principal: the first URI SAN (e.g. a SPIFFE
id), else the first DNS SAN, else the subject's common name.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID

from expound.settings import Settings

log = logging.getLogger("expound.server")


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(f"{setting} {path}: cannot read: {error.strerror or error}") from error


def _certificates(pem: bytes, path: Path, setting: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise ValueError(f"{setting} {path}: not a PEM certificate") from error


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _warn_if_out_of_date(certificate: x509.Certificate, path: Path) -> None:
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        # Served anyway (clients will refuse it): an expired certificate is renewed by
        # the operator, and a server that will not start hides why clients fail.
        log.warning(
            "EXPOUND_TLS_CERT_FILE %s is valid only from %s to %s: clients will refuse it",
            path,
            certificate.not_valid_before_utc.isoformat(),
            certificate.not_valid_after_utc.isoformat(),
        )


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The gRPC port's TLS credentials (None: plaintext, when no certificate is set).

    Raises:
        ValueError: One line naming the setting: a certificate without a key (or the
            reverse), a client CA without TLS, a file that cannot be read or parsed, or a
            key that does not match the certificate.
    """
    cert_path, key_path = settings.tls_cert_file, settings.tls_key_file
    ca_path = settings.tls_client_ca_file
    if cert_path is None and key_path is None:
        if ca_path is not None:
            raise ValueError(
                "EXPOUND_TLS_CLIENT_CA_FILE needs TLS: set EXPOUND_TLS_CERT_FILE and "
                "EXPOUND_TLS_KEY_FILE too"
            )
        return None
    if cert_path is None or key_path is None:
        missing = "EXPOUND_TLS_CERT_FILE" if cert_path is None else "EXPOUND_TLS_KEY_FILE"
        raise ValueError(f"{missing} is not set: TLS needs both a certificate and its key")
    cert_pem = _read(cert_path, "EXPOUND_TLS_CERT_FILE")
    key_pem = _read(key_path, "EXPOUND_TLS_KEY_FILE")
    chain = _certificates(cert_pem, cert_path, "EXPOUND_TLS_CERT_FILE")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"EXPOUND_TLS_KEY_FILE {key_path}: not an unencrypted PEM private key"
        ) from error
    if _spki(key.public_key()) != _spki(chain[0].public_key()):
        raise ValueError(
            f"EXPOUND_TLS_KEY_FILE {key_path}: does not match the certificate in "
            f"EXPOUND_TLS_CERT_FILE {cert_path}"
        )
    _warn_if_out_of_date(chain[0], cert_path)
    client_ca: bytes | None = None
    if ca_path is not None:
        client_ca = _read(ca_path, "EXPOUND_TLS_CLIENT_CA_FILE")
        _certificates(client_ca, ca_path, "EXPOUND_TLS_CLIENT_CA_FILE")
    return grpc.ssl_server_credentials(
        [(key_pem, cert_pem)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


@functools.lru_cache(maxsize=1024)
def certificate_identity(pem: bytes) -> str:
    """The principal a (verified) client certificate names; "" when it names none.

    The first URI SAN, else the first DNS SAN, else the subject common name. Cached: a
    client presents the same certificate on every call of a connection.
    """
    certificate = x509.load_pem_x509_certificate(pem)
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = x509.SubjectAlternativeName([])
    for kind in (x509.UniformResourceIdentifier, x509.DNSName):
        found = names.get_values_for_type(kind)
        if found:
            return str(found[0])
    common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(common[0].value) if common else ""
