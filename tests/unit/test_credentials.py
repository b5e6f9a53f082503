"""Bearer credentials over a real TLS socket: static tokens and JWTs, good and bad.

Static tokens: known, unknown, revoked by removing the line (no restart), a malformed
header. JWTs (Ed25519 issuer key made here): valid, expired, not yet valid, wrong issuer,
wrong audience, tampered payload or signature, ``alg: none``, HS256 signed with the issuer's
public key, another key. Each refusal is UNAUTHENTICATED with nothing but the request id.
And the command line: ``expound auth token`` makes a line that lets its token in, and the
client options (``--tls-ca``, ``--cert``/``--key``, ``--token``, or the environment) dial
the TLS server.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from expound.clients.cli import main
from expound.server.app import RunningServer, running_server
from expound.server.tokens import TOKEN_PREFIX, TokenFile, new_token, token_line
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.support.security import AUDIENCE, ISSUER, Issuer, Pki, bearer, spiffe_id, write_policy


@dataclasses.dataclass
class Server:
    running: RunningServer
    pki: Pki
    issuer: Issuer
    tokens_file: Path
    tokens: dict[str, str]


@pytest.fixture
async def server(settings: Settings, tmp_path: Path) -> AsyncIterator[Server]:
    """TLS with static tokens, JWTs and client certificates (mTLS optional: not required
    here, so bearer callers need none)."""
    pki = Pki(tmp_path / "pki")
    issuer = Issuer(tmp_path)
    tokens = {"ops": new_token(), "reader": new_token()}
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text("".join(token_line(p, t) + "\n" for p, t in tokens.items()))
    policy = write_policy(
        tmp_path / "policy.toml",
        {"ops": ["operator"], "reader": ["auditor"], "jwt-user": ["operator"]},
    )
    secured = settings.model_copy(
        update={
            "tls_cert_file": pki.server_cert,
            "tls_key_file": pki.server_key,
            "tokens_file": tokens_file,
            "jwt_public_key_file": issuer.public_key_file,
            "jwt_issuer": ISSUER,
            "jwt_audience": AUDIENCE,
            "jwt_algorithms": ["EdDSA", "RS256"],
            "jwt_roles_claim": "roles",
            "jwt_leeway_s": 0.0,
            "policy_file": policy,
        }
    )
    async with running_server(secured) as running:
        yield Server(running, pki, issuer, tokens_file, tokens)


async def list_models(server: Server, metadata: tuple[tuple[str, str], ...]) -> str:
    """The status code name of ListModels called with ``metadata`` over TLS."""
    target = f"localhost:{server.running.port}"
    async with grpc.aio.secure_channel(target, server.pki.channel_credentials()) as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        try:
            await stub.ListModels(pb.ListModelsRequest(), metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                assert error.details() == "unauthenticated"
            return error.code().name
    return "OK"


async def test_a_known_token_is_let_in_and_an_unknown_one_is_not(server: Server) -> None:
    assert await list_models(server, bearer(server.tokens["ops"])) == "OK"
    assert await list_models(server, bearer(new_token())) == "UNAUTHENTICATED"
    assert await list_models(server, ()) == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "token exp_x", "Bearer a.b", "Bearer a.b.c"],
)
async def test_a_malformed_authorization_header_is_unauthenticated(
    server: Server, header: str
) -> None:
    assert await list_models(server, (("authorization", header),)) == "UNAUTHENTICATED"


async def test_removing_a_tokens_line_revokes_it_without_a_restart(server: Server) -> None:
    assert await list_models(server, bearer(server.tokens["reader"])) == "OK"
    server.tokens_file.write_text(token_line("ops", server.tokens["ops"]) + "\n")
    assert await list_models(server, bearer(server.tokens["reader"])) == "UNAUTHENTICATED"
    assert await list_models(server, bearer(server.tokens["ops"])) == "OK"
    server.tokens_file.unlink()  # gone: every token refused (fail closed)
    assert await list_models(server, bearer(server.tokens["ops"])) == "UNAUTHENTICATED"


async def test_a_valid_jwt_is_let_in_with_its_policy_roles(server: Server) -> None:
    assert await list_models(server, bearer(server.issuer.token("jwt-user"))) == "OK"
    # A valid token for a subject the policy gives no role.
    assert await list_models(server, bearer(server.issuer.token("someone"))) == (
        "PERMISSION_DENIED"
    )
    # ... unless the roles claim names one the policy defines; unknown names grant nothing.
    with_role = server.issuer.token("someone", roles=["auditor"])
    assert await list_models(server, bearer(with_role)) == "OK"
    made_up = server.issuer.token("someone", roles=["superuser"])
    assert await list_models(server, bearer(made_up)) == "PERMISSION_DENIED"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bad_jwts(issuer: Issuer) -> dict[str, str]:
    now = int(time.time())
    good = issuer.token("jwt-user")
    head, body, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    forged_body = _b64(json.dumps({**claims, "sub": "ops"}).encode())
    flipped = _b64(bytes([base64.urlsafe_b64decode(signature + "==")[0] ^ 1]))[:2]
    unsigned_head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    public_pem = issuer.public_key_file.read_bytes()
    hs_head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    hs_signature = _b64(hmac.new(public_pem, f"{hs_head}.{body}".encode(), hashlib.sha256).digest())
    return {
        "expired": issuer.token("jwt-user", exp=now - 60, nbf=now - 600, iat=now - 600),
        "not yet valid": issuer.token("jwt-user", nbf=now + 600),
        "wrong issuer": issuer.token("jwt-user", iss="https://evil.example"),
        "wrong audience": issuer.token("jwt-user", aud="another-service"),
        "no expiry": jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "sub": "jwt-user"}, issuer.key, algorithm="EdDSA"
        ),
        "tampered payload": f"{head}.{forged_body}.{signature}",
        "tampered signature": f"{head}.{body}.{flipped}{signature[2:]}",
        "alg none": f"{unsigned_head}.{body}.",
        "HS256 with the public key": f"{hs_head}.{body}.{hs_signature}",
        "another key": jwt.encode(
            {**claims}, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA"
        ),
        "a static-token prefix": TOKEN_PREFIX + good,
        # An algorithm the configuration allows but the issuer's (Ed25519) key cannot verify.
        "RS256 on an Ed25519 key": jwt.encode(
            {**claims}, rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
        ),
    }


async def test_every_bad_jwt_is_unauthenticated_and_the_reason_is_only_logged(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    for case, token in bad_jwts(server.issuer).items():
        caplog.clear()
        assert await list_models(server, bearer(token)) == "UNAUTHENTICATED", case
        assert "AccessRefusal: /expound.v1.ExplainService/ListModels: " in caplog.text, case
    # The last reason logged names the check that failed; the caller was told nothing.
    caplog.clear()
    await list_models(server, bearer(bad_jwts(server.issuer)["expired"]))
    assert "ExpiredSignatureError" in caplog.text


def test_the_token_file_format_and_its_hash() -> None:
    token = new_token()
    assert token.startswith(TOKEN_PREFIX) and len(token) == len(TOKEN_PREFIX) + 43
    line = token_line("alice", token)
    assert line.startswith("alice sha256:") and token not in line
    with pytest.raises(ValueError, match="one word"):
        token_line("two words", token)


def test_a_malformed_line_on_reread_is_skipped_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = new_token()
    path = tmp_path / "tokens"
    path.write_text(token_line("alice", token) + "\n")
    tokens = TokenFile(path)
    assert tokens.principal_of(token) == "alice"
    path.write_text("garbage line\n" + token_line("alice", token) + "  # kept\n")
    assert tokens.principal_of(token) == "alice"
    assert "line 1: expected '<principal> sha256:<64 hex digits>' (line skipped)" in caplog.text


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_expound_auth_token_makes_a_line_that_lets_its_token_in(
    server: Server, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert (
        await cli(
            "auth", "token", "--principal", "reader", "--tokens-file", str(server.tokens_file)
        )
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    token = printed[1]
    assert token.startswith(TOKEN_PREFIX)
    fresh = tmp_path / "fresh-tokens"
    assert await cli("auth", "token", "--principal", "x", "--tokens-file", str(fresh)) == 0
    assert fresh.stat().st_mode & 0o777 == 0o600
    target = f"localhost:{server.running.port}"
    ca = str(server.pki.ca_file)
    code = await cli("--target", target, "--tls-ca", ca, "--token", token, "records", "list")
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    code = await cli("--target", target, "--token", "exp_wrong", "--tls-ca", ca, "records", "list")
    assert code == 1
    assert "UNAUTHENTICATED: unauthenticated" in capsys.readouterr().err


async def test_the_client_options_come_from_the_environment_too(
    server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPOUND_TLS_CA", str(server.pki.ca_file))
    monkeypatch.setenv("EXPOUND_TOKEN", server.tokens["ops"])
    target = f"localhost:{server.running.port}"
    assert await cli("--target", target, "models", "list") == 0, capsys.readouterr().err
    assert "german-credit-gbm" in capsys.readouterr().out
    # The option wins over the environment.
    assert await cli("--target", target, "--token", new_token(), "models", "list") == 1


async def test_the_cli_dials_with_a_client_certificate(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = Pki(tmp_path / "pki")
    cert, key = pki.client("ops")
    policy = write_policy(tmp_path / "policy.toml", {spiffe_id("ops"): ["operator"]})
    mtls = settings.model_copy(
        update={
            "tls_cert_file": pki.server_cert,
            "tls_key_file": pki.server_key,
            "tls_client_ca_file": pki.ca_file,
            "policy_file": policy,
        }
    )
    async with running_server(mtls) as running:
        target = f"localhost:{running.port}"
        ca = str(pki.ca_file)
        args = ("--target", target, "--tls-ca", ca)
        assert await cli(*args, "--cert", str(cert), "--key", str(key), "models", "list") == 0
        assert await cli(*args, "--cert", str(cert), "models", "list") == 2
        assert "--cert and --key go together" in capsys.readouterr().err


async def test_the_client_never_sends_a_token_in_clear_beyond_loopback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = await cli("--target", "10.9.8.7:50051", "--token", new_token(), "models", "list")
    assert code == 2
    assert "refusing to send a token in clear to 10.9.8.7:50051" in capsys.readouterr().err
