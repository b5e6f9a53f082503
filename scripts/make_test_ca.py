"""A test CA for local use: a CA, a server certificate and client certificates.

    .venv/bin/python scripts/make_test_ca.py var/tls --client loan-app --client auditor-1

writes into ``var/tls``: ``ca.pem`` (trust it: ``EXPOUND_TLS_CLIENT_CA_FILE`` on the server,
``--tls-ca`` on clients), ``ca-key.pem``, ``server.pem`` + ``server-key.pem`` (SAN
localhost, 127.0.0.1, ::1 and ``--server-name``s) and ``client-<name>.pem`` +
``client-<name>-key.pem`` per ``--client`` (subject CN and a ``spiffe://expound.test/<name>``
URI SAN: the server takes the URI as the principal). ``--expired-client`` makes a client
certificate that expired yesterday, for tests. Keys are ECDSA P-256, written 0600.

For local use and tests only: a production deployment has its own CA (or an ACME/SPIFFE
issuer). The tests import these functions to make their certificates at test time.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SPIFFE_DOMAIN = "expound.test"
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        """The certificate, PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The private key, unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str = "expound test CA", days: int = 365) -> Issued:
    """A self-signed CA certificate, valid from an hour ago for ``days`` days."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(certificate, key)


def issue(
    ca: Issued,
    common_name: str,
    *,
    server: bool = False,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    uris: tuple[str, ...] = (),
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Issued:
    """A leaf certificate signed by ``ca``: for a server (``server``) or a client.

    Valid from an hour ago for 30 days unless ``not_before``/``not_after`` say otherwise
    (an expired certificate for tests: both in the past).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri) for uri in uris]
    names += [x509.DNSName(name) for name in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(hours=1))
        .not_valid_after(not_after or now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def server_certificate(
    ca: Issued, extra_names: tuple[str, ...] = (), expired: bool = False
) -> Issued:
    """A server certificate for localhost, 127.0.0.1 and ::1 (and ``extra_names``)."""
    not_before, not_after = expired_dates() if expired else (None, None)
    return issue(
        ca,
        "localhost",
        server=True,
        dns=(*LOOPBACK_NAMES, *extra_names),
        ips=LOOPBACK_IPS,
        not_before=not_before,
        not_after=not_after,
    )


def client_certificate(ca: Issued, principal: str, expired: bool = False) -> Issued:
    """A client certificate naming ``principal`` (CN and a SPIFFE URI SAN)."""
    not_before, not_after = expired_dates() if expired else (None, None)
    return issue(
        ca,
        principal,
        uris=(spiffe_id(principal),),
        not_before=not_before,
        not_after=not_after,
    )


def spiffe_id(principal: str) -> str:
    """The URI SAN a client certificate of this CA carries for ``principal``."""
    return f"spiffe://{SPIFFE_DOMAIN}/{principal}"


def expired_dates() -> tuple[datetime, datetime]:
    """``not_before`` and ``not_after`` of a certificate that expired a day ago."""
    now = datetime.now(UTC)
    return now - timedelta(days=30), now - timedelta(days=1)


def write_pair(issued: Issued, directory: Path, stem: str) -> tuple[Path, Path]:
    """Writes ``<stem>.pem`` and ``<stem>-key.pem`` (the key 0600); returns both paths."""
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    cert_path.write_bytes(issued.cert_pem)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(issued.key_pem)
    return cert_path, key_path


def main(argv: list[str] | None = None) -> None:
    """Writes a test CA, a server certificate and the client certificates asked for."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="directory to write into (created 0700)")
    parser.add_argument("--client", action="append", default=[], help="client principal")
    parser.add_argument(
        "--expired-client", action="append", default=[], help="client principal, expired"
    )
    parser.add_argument(
        "--server-name", action="append", default=[], help="another DNS name for the server"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca = make_ca()
    written = [*write_pair(ca, args.out, "ca")]
    written += write_pair(server_certificate(ca, tuple(args.server_name)), args.out, "server")
    for principal in args.client:
        written += write_pair(client_certificate(ca, principal), args.out, f"client-{principal}")
    for principal in args.expired_client:
        issued = client_certificate(ca, principal, expired=True)
        written += write_pair(issued, args.out, f"client-{principal}")
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
