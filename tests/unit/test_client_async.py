"""The Python clients, sync and asyncio, over real sockets: TLS and mTLS with certificates
made here, bearer tokens, a server name override, the caller's headers and request id.

The synchronous client runs on a thread (``asyncio.to_thread``): the server under test
runs on this event loop, which a blocking call on it would stall.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from expound.clients.aio import AsyncExplainClient
from expound.clients.channels import CallMetadata, ChannelSecurity
from expound.clients.cli import main
from expound.clients.client import ExplainClient, error_details
from expound.server.app import RunningServer, running_server
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from expound.wire import explain_request
from scripts.make_test_ca import issue, write_pair
from tests.conftest import GBM
from tests.support.security import Pki, spiffe_id, write_policy, write_tokens


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }


def test_the_async_client_has_every_method_of_the_sync_one_with_the_same_parameters() -> None:
    sync, aio = public_methods(ExplainClient), public_methods(AsyncExplainClient)
    assert sorted(sync) == sorted(aio)
    for name, signature in sync.items():
        assert list(signature.parameters) == list(aio[name].parameters), name
        for parameter in signature.parameters.values():
            assert parameter.default == aio[name].parameters[parameter.name].default, name
    assert inspect.signature(ExplainClient.__init__) == inspect.signature(
        AsyncExplainClient.__init__
    )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


@pytest.fixture
async def mtls_server(settings: Settings, pki: Pki, tmp_path: Path) -> AsyncIterator[int]:
    """TLS with client certificates required; "analyst-1" is an analyst, by certificate."""
    policy = write_policy(tmp_path / "policy.toml", {spiffe_id("analyst-1"): ["analyst"]})
    update = {
        "tls_cert_file": pki.server_cert,
        "tls_key_file": pki.server_key,
        "tls_client_ca_file": pki.ca_file,
        "policy_file": policy,
    }
    async with running_server(settings.model_copy(update=update)) as running:
        yield running.port


def mtls(pki: Pki, principal: str) -> ChannelSecurity:
    cert, key = pki.client(principal)
    return ChannelSecurity(tls_ca=pki.ca_file, cert=cert, key=key)


async def test_async_client_over_mtls_explains_and_reads_the_record_back(
    mtls_server: int, pki: Pki, denied_applicant: dict[str, Any]
) -> None:
    target = f"localhost:{mtls_server}"
    async with AsyncExplainClient(target, security=mtls(pki, "analyst-1")) as client:
        models = await client.list_models()
        response = await client.explain(GBM, denied_applicant, audience="analyst")
        record = await client.get_record(response.record_id)
    assert GBM in {m.model_id for m in models}
    assert response.archived and response.prediction.decision
    assert record.response.record_id == response.record_id
    assert record.principal == spiffe_id("analyst-1")


async def test_sync_client_over_mtls_is_refused_without_or_with_a_stranger_certificate(
    mtls_server: int, pki: Pki
) -> None:
    target = f"localhost:{mtls_server}"

    def list_models(security: ChannelSecurity) -> str:
        with ExplainClient(target, timeout=5, security=security) as client:
            try:
                client.list_models()
            except grpc.RpcError as error:
                return error_details(error).code
        return "OK"

    assert await asyncio.to_thread(list_models, mtls(pki, "analyst-1")) == "OK"
    no_cert = ChannelSecurity(tls_ca=pki.ca_file)
    assert await asyncio.to_thread(list_models, no_cert) == "UNAVAILABLE"
    stranger = mtls(pki, "stranger")
    assert await asyncio.to_thread(list_models, stranger) == "PERMISSION_DENIED"


@pytest.fixture
async def token_server(
    settings: Settings, pki: Pki, tmp_path: Path
) -> AsyncIterator[tuple[RunningServer, dict[str, str]]]:
    """TLS without client certificates; bearer tokens for an auditor and an analyst."""
    tokens = write_tokens(tmp_path / "tokens", ["audit", "ana"])
    policy = write_policy(tmp_path / "policy.toml", {"audit": ["auditor"], "ana": ["analyst"]})
    update = {
        "tls_cert_file": pki.server_cert,
        "tls_key_file": pki.server_key,
        "tokens_file": tmp_path / "tokens",
        "policy_file": policy,
    }
    async with running_server(settings.model_copy(update=update)) as running:
        yield running, tokens


async def test_bearer_tokens_from_both_clients_authenticate_and_a_wrong_one_does_not(
    token_server: tuple[RunningServer, dict[str, str]], pki: Pki
) -> None:
    running, tokens = token_server
    target = f"localhost:{running.port}"
    audit = ChannelSecurity(tls_ca=pki.ca_file, token=tokens["audit"])
    async with AsyncExplainClient(target, security=audit) as client:
        await client.access_log()

    def sync_access_log(token: str) -> str:
        security = ChannelSecurity(tls_ca=pki.ca_file, token=token)
        with ExplainClient(target, timeout=5, security=security) as client:
            try:
                client.access_log()
            except grpc.RpcError as error:
                return error_details(error).code
        return "OK"

    assert await asyncio.to_thread(sync_access_log, tokens["audit"]) == "OK"
    # The analyst's token is good but its role may not read the access log.
    assert await asyncio.to_thread(sync_access_log, tokens["ana"]) == "PERMISSION_DENIED"
    assert await asyncio.to_thread(sync_access_log, "not-a-token") == "UNAUTHENTICATED"


async def test_the_request_id_reaches_the_server_and_comes_back_in_errors(
    token_server: tuple[RunningServer, dict[str, str]], pki: Pki
) -> None:
    running, tokens = token_server
    target = f"localhost:{running.port}"
    security = ChannelSecurity(tls_ca=pki.ca_file, token=tokens["audit"])
    async with AsyncExplainClient(target, security=security) as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.with_metadata(request_id="nb-cell-42").get_record("no-such-record")
    details = error_details(caught.value)
    assert (details.code, details.request_id) == ("NOT_FOUND", "nb-cell-42")

    def sync_failure() -> str:
        with ExplainClient(target, 5, security, request_id="sync-7") as client:
            try:
                client.get_model("no-such-model")
            except grpc.RpcError as error:
                return error_details(error).request_id
        return ""

    assert await asyncio.to_thread(sync_failure) == "sync-7"


async def test_a_server_name_override_verifies_a_certificate_for_another_name(
    settings: Settings, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A certificate naming only expound.internal, served on 127.0.0.1.
    cert, key = write_pair(
        issue(pki.ca, "expound.internal", server=True, dns=("expound.internal",)),
        tmp_path,
        "internal",
    )
    update = {"tls_cert_file": cert, "tls_key_file": key}
    async with running_server(settings.model_copy(update=update)) as running:
        target = f"127.0.0.1:{running.port}"
        named = ChannelSecurity(tls_ca=pki.ca_file, server_name="expound.internal")
        async with AsyncExplainClient(target, timeout=5, security=named) as client:
            assert await client.list_models()
        unnamed = ChannelSecurity(tls_ca=pki.ca_file)
        async with AsyncExplainClient(target, timeout=5, security=unnamed) as client:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.list_models()
        # The command line's option, and the environment's.
        dial = ["--target", target, "--tls-ca", str(pki.ca_file), "--timeout", "5"]
        named_cli = [*dial, "--tls-server-name", "expound.internal", "models", "list"]
        assert await asyncio.to_thread(main, named_cli) == 0
        assert await asyncio.to_thread(main, [*dial, "models", "list"]) == 1
        monkeypatch.setenv("EXPOUND_TLS_SERVER_NAME", "expound.internal")
        assert await asyncio.to_thread(main, [*dial, "models", "list"]) == 0
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


class _EchoMetadata(explain_pb2_grpc.ExplainServiceServicer):  # type: ignore[misc]
    """Answers ListModels with one "model" per metadata entry the call carried."""

    async def ListModels(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        entries = [
            f"{key}={value if isinstance(value, str) else value.hex()}"
            for key, value in context.invocation_metadata() or ()
            if not key.startswith(("grpc-", ":", "user-agent"))
        ]
        return pb.ListModelsResponse(models=[pb.ModelInfo(model_id=e) for e in entries])


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    server = grpc.aio.server()
    explain_pb2_grpc.add_ExplainServiceServicer_to_server(_EchoMetadata(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield port
    await server.stop(None)


async def test_both_clients_send_the_token_the_headers_and_the_request_id(echo_port: int) -> None:
    target = f"127.0.0.1:{echo_port}"
    security = ChannelSecurity(token="t0ken")
    headers: dict[str, str | bytes] = {"x-tenant": "bank-a", "x-trace-bin": b"\x00\x01"}
    expected = {
        "x-tenant=bank-a",
        "x-trace-bin=0001",
        "authorization=Bearer t0ken",
        "x-request-id=r-1",
    }
    async with AsyncExplainClient(target, security=security, headers=headers) as client:
        seen_async = {
            m.model_id for m in await client.with_metadata(request_id="r-1").list_models()
        }
        # The view shares the channel and leaves the parent's metadata alone.
        seen_plain = {m.model_id for m in await client.list_models()}

    def sync_seen() -> set[str]:
        with ExplainClient(target, security=security, headers=headers) as client:
            view = client.with_metadata(request_id="r-1", headers={"x-extra": "1"})
            view.close()  # a view does not close its parent's channel
            return {m.model_id for m in view.list_models()}

    assert seen_async == expected
    assert seen_plain == expected - {"x-request-id=r-1"}
    assert await asyncio.to_thread(sync_seen) == expected | {"x-extra=1"}


@pytest.mark.parametrize(
    ("headers", "request_id", "complaint"),
    [
        ({"X-Tenant": "a"}, "", "lower-case"),
        ({"grpc-timeout": "1"}, "", "reserved"),
        ({"authorization": "Bearer x"}, "", "token"),
        ({"x-name": "caf\u00e9"}, "", "printable ASCII"),
        ({"x-name": b"raw"}, "", "-bin"),
        ({"x-name-bin": "text"}, "", "-bin"),
        ({}, "line\nbreak", "request id"),
        ({}, "x" * 129, "request id"),
    ],
)
def test_bad_metadata_is_refused_before_any_call(
    headers: dict[str, Any], request_id: str, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        CallMetadata(headers=headers, request_id=request_id)
    with pytest.raises(ValueError, match=complaint):
        ExplainClient("127.0.0.1:1", headers=headers, request_id=request_id)


@pytest.mark.parametrize(
    ("security", "target", "complaint"),
    [
        (ChannelSecurity(token="t"), "expound.example:443", "in clear"),
        (ChannelSecurity(server_name="x.internal"), "127.0.0.1:1", "only meaningful over TLS"),
        (ChannelSecurity(cert=Path("c.pem")), "127.0.0.1:1", "go together"),
        (ChannelSecurity(tls_ca=Path("/no/such/ca.pem")), "127.0.0.1:1", "--tls-ca"),
    ],
)
def test_unsafe_or_broken_security_is_refused_by_both_clients(
    security: ChannelSecurity, target: str, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        ExplainClient(target, security=security)
    with pytest.raises(ValueError, match=complaint):
        AsyncExplainClient(target, security=security)


def _items(applicant: dict[str, Any], count: int) -> Iterator[pb.BatchItem]:
    for i in range(count):
        features = dict(applicant, credit_amount=1000.0 + 500 * i)
        yield pb.BatchItem(item_id=f"row-{i}", request=explain_request(GBM, features))
    yield pb.BatchItem(item_id="bad", request=explain_request("no-such-model", applicant))


async def test_async_explain_batch_streams_ordered_results_with_per_item_errors(
    service: RunningServer, denied_applicant: dict[str, Any]
) -> None:
    async with AsyncExplainClient(f"127.0.0.1:{service.port}") as client:
        results = [r async for r in client.explain_batch(_items(denied_applicant, 4))]

        async def agen() -> AsyncIterator[pb.BatchItem]:
            for item in _items(denied_applicant, 2):
                yield item

        from_async = [r.item_id async for r in client.explain_batch(agen())]
    assert [r.item_id for r in results] == ["row-0", "row-1", "row-2", "row-3", "bad"]
    assert all(r.HasField("response") and r.response.archived for r in results[:4])
    assert len({r.response.record_id for r in results[:4]}) == 4
    assert (
        results[4].HasField("error") and results[4].error.code == grpc.StatusCode.NOT_FOUND.value[0]
    )
    assert from_async == ["row-0", "row-1", "bad"]


async def test_unknown_audience_is_refused_by_name() -> None:
    async with AsyncExplainClient("127.0.0.1:1") as client:
        with pytest.raises(ValueError, match="audience 'regulator'"):
            await client.explain(GBM, {}, audience="regulator")


def test_the_clients_package_exports_exactly_its_all() -> None:
    import expound.clients

    # The names load on first use (PEP 562): what dir() shows is what the package exports.
    assert sorted(expound.clients.__all__) == dir(expound.clients)
    for name in expound.clients.__all__:
        assert not inspect.ismodule(getattr(expound.clients, name))
    with pytest.raises(AttributeError, match="no attribute 'grpc'"):
        _ = expound.clients.grpc
    assert expound.clients.ExplainClient is ExplainClient
    assert expound.clients.AsyncExplainClient is AsyncExplainClient
