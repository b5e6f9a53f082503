"""TLS and mTLS on the gRPC port over real sockets, with certificates made here.

Handshakes: good, expired server or client certificate, a CA the other side does not trust,
no client certificate, a plaintext client. The client certificate's URI SAN becomes the
principal. And the start-up refusals: files missing, unreadable or mismatched; no
authentication on a non-loopback address; an LLM key over plain http to another host.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from expound.errors import StartupError
from expound.llm.client import CompletionsClient, tls_transport
from expound.pipeline.assembly import insecure_llm_key
from expound.server.app import running_server
from expound.server.tls import certificate_identity
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from scripts.make_test_ca import issue
from tests.support.security import Issuer, Pki, spiffe_id, write_policy


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


def tls(settings: Settings, pki: Pki, **update: Any) -> Settings:
    return settings.model_copy(
        update={"tls_cert_file": pki.server_cert, "tls_key_file": pki.server_key, **update}
    )


async def list_models(port: int, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    """Calls ListModels over TLS (or plaintext without credentials); the status code."""
    target = f"localhost:{port}"
    channel = (
        grpc.aio.secure_channel(target, credentials)
        if credentials is not None
        else grpc.aio.insecure_channel(target)
    )
    async with channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        try:
            await stub.ListModels(pb.ListModelsRequest(), timeout=5)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


@pytest.fixture
async def mtls_port(settings: Settings, pki: Pki, tmp_path: Path) -> AsyncIterator[int]:
    """A server requiring client certificates of ``pki``; "auditor-1" is an auditor."""
    policy = write_policy(tmp_path / "policy.toml", {spiffe_id("auditor-1"): ["auditor"]})
    mtls = tls(settings, pki, tls_client_ca_file=pki.ca_file, policy_file=policy)
    async with running_server(mtls) as running:
        yield running.port


async def test_tls_answers_a_client_that_trusts_its_ca(settings: Settings, pki: Pki) -> None:
    async with running_server(tls(settings, pki)) as running:
        assert await list_models(running.port, pki.channel_credentials()) == grpc.StatusCode.OK


async def test_a_plaintext_client_gets_nothing_from_a_tls_port(
    settings: Settings, pki: Pki
) -> None:
    async with running_server(tls(settings, pki)) as running:
        assert await list_models(running.port, None) == grpc.StatusCode.UNAVAILABLE


async def test_a_client_trusting_another_ca_refuses_the_server(
    settings: Settings, pki: Pki, tmp_path: Path
) -> None:
    other = Pki(tmp_path / "other")
    async with running_server(tls(settings, pki)) as running:
        assert await list_models(running.port, other.channel_credentials()) == (
            grpc.StatusCode.UNAVAILABLE
        )


async def test_an_expired_server_certificate_is_refused_by_clients_and_logged(
    settings: Settings, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = pki.expired_server()
    expired = settings.model_copy(update={"tls_cert_file": cert, "tls_key_file": key})
    with caplog.at_level(logging.WARNING, logger="expound.server"):
        async with running_server(expired) as running:
            code = await list_models(running.port, pki.channel_credentials())
    assert code == grpc.StatusCode.UNAVAILABLE
    assert "clients will refuse it" in caplog.text


async def test_mtls_takes_the_principal_from_the_certificate(mtls_port: int, pki: Pki) -> None:
    assert await list_models(mtls_port, pki.channel_credentials("auditor-1")) == (
        grpc.StatusCode.OK
    )
    # A good certificate whose principal the policy gives no role.
    assert await list_models(mtls_port, pki.channel_credentials("stranger")) == (
        grpc.StatusCode.PERMISSION_DENIED
    )


async def test_mtls_refuses_no_expired_or_foreign_client_certificates(
    mtls_port: int, pki: Pki, tmp_path: Path
) -> None:
    assert await list_models(mtls_port, pki.channel_credentials()) == (grpc.StatusCode.UNAVAILABLE)
    cert, key = pki.client("auditor-1", expired=True)
    expired = grpc.ssl_channel_credentials(
        pki.ca_file.read_bytes(), key.read_bytes(), cert.read_bytes()
    )
    assert await list_models(mtls_port, expired) == grpc.StatusCode.UNAVAILABLE
    # Signed by a CA the server does not trust, for a principal the policy knows.
    other = Pki(tmp_path / "other")
    cert, key = other.client("auditor-1")
    foreign = grpc.ssl_channel_credentials(
        pki.ca_file.read_bytes(), key.read_bytes(), cert.read_bytes()
    )
    assert await list_models(mtls_port, foreign) == grpc.StatusCode.UNAVAILABLE


async def test_a_trusted_client_certificate_that_cannot_be_read_is_unauthenticated(
    mtls_port: int, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    # The handshake takes a URI SAN that is not ASCII; cryptography refuses to read it.
    # It was INTERNAL: the ValueError escaped the access check.
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    san = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x86\x01\xff")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auditor-1")]))
        .issuer_name(pki.ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(san, critical=False)
        .sign(pki.ca.key, hashes.SHA256())
    )
    with pytest.raises(ValueError):
        certificate_identity(certificate.public_bytes(serialization.Encoding.PEM))
    credentials = grpc.ssl_channel_credentials(
        pki.ca_file.read_bytes(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        certificate.public_bytes(serialization.Encoding.PEM),
    )
    with caplog.at_level(logging.WARNING, logger="expound.server"):
        assert await list_models(mtls_port, credentials) == grpc.StatusCode.UNAUTHENTICATED
    assert "client certificate cannot be read" in caplog.text


async def start(settings: Settings) -> None:
    async with running_server(settings):
        pass


async def test_tls_files_that_cannot_be_used_are_one_line_naming_the_setting(
    settings: Settings, pki: Pki, tmp_path: Path
) -> None:
    other = Pki(tmp_path / "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    empty = tmp_path / "empty-tokens"
    empty.write_text("")
    ed25519_public = Issuer(tmp_path).public_key_file
    cases = [
        ({"tls_cert_file": pki.server_cert}, "EXPOUND_TLS_KEY_FILE is not set"),
        ({"tls_key_file": pki.server_key}, "EXPOUND_TLS_CERT_FILE is not set"),
        ({"tls_client_ca_file": pki.ca_file}, "EXPOUND_TLS_CLIENT_CA_FILE needs TLS"),
        (
            {"tls_cert_file": tmp_path / "missing.pem", "tls_key_file": pki.server_key},
            f"EXPOUND_TLS_CERT_FILE {tmp_path / 'missing.pem'}: cannot read",
        ),
        (
            {"tls_cert_file": garbage, "tls_key_file": pki.server_key},
            f"EXPOUND_TLS_CERT_FILE {garbage}: not a PEM certificate",
        ),
        (
            {"tls_cert_file": pki.server_cert, "tls_key_file": garbage},
            f"EXPOUND_TLS_KEY_FILE {garbage}: not an unencrypted PEM private key",
        ),
        (
            {"tls_cert_file": pki.server_cert, "tls_key_file": other.server_key},
            "does not match the certificate in EXPOUND_TLS_CERT_FILE",
        ),
        (
            {
                "tls_cert_file": pki.server_cert,
                "tls_key_file": pki.server_key,
                "tls_client_ca_file": garbage,
            },
            "EXPOUND_TLS_CLIENT_CA_FILE",
        ),
        ({"tokens_file": tmp_path / "no-tokens"}, "EXPOUND_TOKENS_FILE"),
        (
            {"tokens_file": garbage},
            f"EXPOUND_TOKENS_FILE {garbage} line 1: expected '<principal> sha256:",
        ),
        ({"tokens_file": empty, "policy_file": garbage}, f"EXPOUND_POLICY_FILE {garbage}"),
        ({"jwt_public_key_file": garbage}, "needs EXPOUND_JWT_ISSUER and EXPOUND_JWT_AUDIENCE"),
        (
            {"jwt_public_key_file": garbage, "jwt_issuer": "i", "jwt_audience": "a"},
            f"EXPOUND_JWT_PUBLIC_KEY_FILE {garbage}: not a PEM public key",
        ),
        (
            {
                "jwt_public_key_file": garbage,
                "jwt_issuer": "i",
                "jwt_audience": "a",
                "jwt_algorithms": ["HS256", "none"],
            },
            "EXPOUND_JWT_ALGORITHMS: ['HS256', 'none'] not allowed",
        ),
        (
            {
                "jwt_public_key_file": ed25519_public,
                "jwt_issuer": "i",
                "jwt_audience": "a",
                "jwt_algorithms": ["ES256"],
            },
            "EXPOUND_JWT_ALGORITHMS ['ES256']: none verifies with the",
        ),
    ]
    for update, expected in cases:
        with pytest.raises(StartupError) as caught:
            await start(settings.model_copy(update=update))
        message = str(caught.value)
        assert expected in message, (update, message)
        assert "\n" not in message


async def test_a_policy_naming_an_unknown_rpc_or_role_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("")
    cases = [
        ('[roles.a]\nrpcs = ["Explian"]\n', "names 'Explian', not an RPC of expound.v1"),
        ('[roles.a]\nrpcs = ["Explain"]\n[principals]\nx = ["b"]\n', "undefined roles ['b']"),
        ('[roles.a]\nown_records = ["Explain"]\n', "own_records may name only"),
        ("[roles.a]\nrpcs = [\n", "not valid TOML"),
    ]
    for text, expected in cases:
        policy = tmp_path / "policy.toml"
        policy.write_text(text)
        with pytest.raises(StartupError) as caught:
            await start(settings.model_copy(update={"tokens_file": tokens, "policy_file": policy}))
        assert expected in str(caught.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
async def test_no_authentication_beyond_loopback_is_refused(
    settings: Settings, pki: Pki, host: str
) -> None:
    with pytest.raises(StartupError, match=f"EXPOUND_HOST {host} is not loopback"):
        await start(settings.model_copy(update={"host": host}))
    # TLS alone is not enough: anyone could still call.
    with pytest.raises(StartupError, match="has no authentication"):
        await start(tls(settings, pki, host=host))


async def test_insecure_says_so_and_serves_with_a_warning(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="expound.server"):
        await start(settings.model_copy(update={"host": "0.0.0.0", "insecure": True}))
    assert "serving on 0.0.0.0 without TLS and authentication (EXPOUND_INSECURE=true)" in (
        caplog.text
    )


async def test_beyond_loopback_with_tls_and_client_certificates_starts(
    settings: Settings, pki: Pki
) -> None:
    await start(tls(settings, pki, host="0.0.0.0", tls_client_ca_file=pki.ca_file))


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://10.1.2.3:8000", True),
        ("http://llm.internal:8000", True),
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
        ("https://llm.internal", False),
        # A pool: every server of it is checked.
        ("https://llm-a.internal,http://10.1.2.3:8000", True),
        ("https://llm-a.internal,https://llm-b.internal", False),
    ],
)
async def test_the_llm_key_never_goes_over_plain_http_to_another_host(
    settings: Settings, url: str, refused: bool
) -> None:
    keyed = settings.model_copy(
        update={"llm_mode": "constrained", "llm_base_url": url, "llm_api_key": "sk-secret"}
    )
    problem = insecure_llm_key(keyed)
    assert (problem is not None) == refused
    if refused:
        assert problem is not None and "EXPOUND_LLM_API_KEY would be sent in clear" in problem
        assert "sk-secret" not in problem
        with pytest.raises(StartupError, match="EXPOUND_LLM_BASE_URL"):
            await start(keyed)
    judged = settings.model_copy(
        update={
            "llm_mode": "constrained",
            "llm_api_key": "k",
            "ranker_relevance": "judge",
            "judge_base_url": url,
        }
    )
    assert (insecure_llm_key(judged) is not None) == refused


async def test_the_llm_client_trusts_the_ca_bundle_it_is_given(pki: Pki, tmp_path: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)

    async def answer(reader: Any, writer: Any) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    url = f"https://localhost:{server.sockets[0].getsockname()[1]}"
    async with server:
        trusting = CompletionsClient(url, transport=tls_transport(pki.ca_file))
        system_only = CompletionsClient(url)
        try:
            assert await trusting.check_health()
            assert not await system_only.check_health()
        finally:
            await trusting.aclose()
            await system_only.aclose()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("nope")
    with pytest.raises(ValueError, match=f"EXPOUND_LLM_CA_FILE {garbage}"):
        tls_transport(garbage)


def test_a_certificate_names_its_principal_by_uri_then_dns_then_common_name(pki: Pki) -> None:
    def identity(**names: tuple[str, ...]) -> str:
        return certificate_identity(issue(pki.ca, "the-cn", **names).cert_pem)

    assert identity(uris=("spiffe://x/a",), dns=("a.example",)) == "spiffe://x/a"
    assert identity(dns=("a.example", "b.example"), ips=("10.0.0.1",)) == "a.example"
    assert identity(ips=("10.0.0.1",)) == "the-cn"
    assert identity() == "the-cn"
