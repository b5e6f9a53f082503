"""Roles per RPC over a real TLS socket: the whole role x RPC matrix, and who reads what.

The server runs TLS (certificates made here) with static tokens, one principal per role,
on the shipped default policy. Every RPC of the service descriptor is called by every role
and by a caller without a credential: a role the issue grants it gets an answer (OK or an
application error: the empty requests sent here are mostly invalid), any other role
PERMISSION_DENIED, no credential UNAUTHENTICATED; every answer carries its request id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from expound.server.app import RunningServer, running_server
from expound.server.policy import RPCS, SERVICE, load_policy
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM
from tests.support.security import ROLES, Pki, bearer, write_policy, write_tokens
from tests.support.wire_status import rich_status

# The issue's table, written out here rather than read from the policy it checks.
ALLOWED: dict[str, set[str]] = {
    "Explain": {"decider", "analyst"},
    "ExplainBatch": {"decider", "analyst"},
    "GetRecord": {"analyst", "auditor"},
    "ListRecords": {"analyst", "auditor"},
    "GetConsistencyProof": {"auditor"},
    "GetCheckpoint": {"auditor"},
    "ListModels": {"analyst", "auditor", "operator"},
    "GetModel": {"analyst", "auditor", "operator"},
    "ReloadModels": {"operator"},
    "PlaceHold": {"records-admin"},
    "ReleaseHold": {"records-admin"},
    "ExpireRecords": {"records-admin"},
    "GetRecordHistory": {"records-admin", "auditor"},
    "ListAccessLog": {"auditor"},
}
CALLERS = (*ROLES, "nobody", None)  # "nobody": a valid token whose principal has no role


@dataclasses.dataclass
class Secured:
    running: RunningServer
    pki: Pki
    tokens: dict[str, str]
    settings: Settings


@pytest.fixture
async def secured(settings: Settings, tmp_path: Path) -> AsyncIterator[Secured]:
    pki = Pki(tmp_path / "pki")
    principals = [*ROLES, "nobody"]
    tokens = write_tokens(tmp_path / "tokens", principals)
    policy = write_policy(tmp_path / "policy.toml", {role: [role] for role in ROLES})
    secured_settings = settings.model_copy(
        update={
            "tls_cert_file": pki.server_cert,
            "tls_key_file": pki.server_key,
            "tokens_file": tmp_path / "tokens",
            "policy_file": policy,
        }
    )
    async with running_server(secured_settings) as running:
        yield Secured(running, pki, tokens, secured_settings)


@pytest.fixture
async def tls_channel(secured: Secured) -> AsyncIterator[grpc.aio.Channel]:
    target = f"localhost:{secured.running.port}"
    async with grpc.aio.secure_channel(target, secured.pki.channel_credentials()) as channel:
        yield channel


def request_id_of(trailer: Any) -> str:
    return dict(trailer or ()).get("x-request-id", "")


async def call(
    channel: grpc.aio.Channel, rpc: str, metadata: tuple[tuple[str, str], ...]
) -> tuple[grpc.StatusCode, str, Any]:
    """Calls ``rpc`` with its empty request (a streaming one with one empty item); (code,
    request id from the trailer, error)."""
    method = SERVICE.methods_by_name[rpc]
    request_type = getattr(pb, method.input_type.name)
    response_type = getattr(pb, method.output_type.name)
    path = f"/{SERVICE.full_name}/{rpc}"
    serializers = {
        "request_serializer": request_type.SerializeToString,
        "response_deserializer": response_type.FromString,
    }
    metadata = (*metadata, ("x-request-id", f"m-{rpc}"))
    try:
        if method.client_streaming:
            stream = channel.stream_stream(path, **serializers)(
                iter([request_type()]), metadata=metadata, timeout=30
            )
            results = [result async for result in stream]
            # An empty item is answered, in the stream, by its own INVALID_ARGUMENT.
            assert [r.error.code for r in results] == [grpc.StatusCode.INVALID_ARGUMENT.value[0]]
            answer: Any = stream
        else:
            answer = channel.unary_unary(path, **serializers)(
                request_type(), metadata=metadata, timeout=30
            )
            await answer
    except grpc.aio.AioRpcError as error:
        return error.code(), request_id_of(error.trailing_metadata()), error
    return grpc.StatusCode.OK, request_id_of(await answer.trailing_metadata()), None


def test_the_matrix_names_every_rpc_and_the_shipped_policy_names_them_too() -> None:
    assert set(ALLOWED) == RPCS
    assert load_policy(None).named_rpcs == RPCS
    assert load_policy(None).roles == set(ROLES)


async def test_every_role_against_every_rpc(
    secured: Secured, tls_channel: grpc.aio.Channel
) -> None:
    outcomes: dict[tuple[str, str], str] = {}
    for rpc in sorted(RPCS):
        for caller in CALLERS:
            metadata = bearer(secured.tokens[caller]) if caller else ()
            code, request_id, error = await call(tls_channel, rpc, metadata)
            assert request_id == f"m-{rpc}", (rpc, caller, code)
            if caller is None:
                expected = "UNAUTHENTICATED"
            elif caller in ALLOWED[rpc]:
                expected = "answered"
            else:
                expected = "PERMISSION_DENIED"
            got = code.name if code.name in ("UNAUTHENTICATED", "PERMISSION_DENIED") else "answered"
            # An allowed call is answered by the RPC itself, with one of its documented
            # codes; INTERNAL or UNKNOWN would be the server (or the transport) failing.
            assert code.name not in ("INTERNAL", "UNKNOWN"), (rpc, caller, code, error)
            outcomes[(rpc, str(caller))] = got
            assert got == expected, (rpc, caller, code, error)
            if error is not None and got != "answered":
                # Nothing but the code, a fixed message and the request id.
                assert error.details() in ("unauthenticated", "permission denied")
                details = rich_status(error).details
                assert len(details) == 1
                info = error_details_pb2.RequestInfo()
                assert details[0].Unpack(info) and info.request_id == f"m-{rpc}"
    assert len(outcomes) == len(RPCS) * len(CALLERS)


async def test_a_refusal_is_logged_with_its_reason_server_side(
    secured: Secured, tls_channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    await call(tls_channel, "ListModels", bearer("exp_" + "A" * 43))
    await call(tls_channel, "ReloadModels", bearer(secured.tokens["decider"]))
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    # One line per refused call, with the reason the caller never sees.
    assert len(lines) == 2, lines
    assert lines[0].startswith(
        "UNAUTHENTICATED 'unauthenticated' request id m-ListModels cause 'AccessRefusal: "
        "/expound.v1.ExplainService/ListModels: unknown or revoked static token; peer ipv"
    )
    assert lines[1].startswith(
        "PERMISSION_DENIED 'permission denied' request id m-ReloadModels cause \"AccessRefusal: "
        "/expound.v1.ExplainService/ReloadModels: principal 'decider' roles ['decider'] not allowed"
    )


async def test_health_checks_stay_open(secured: Secured, tls_channel: grpc.aio.Channel) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    answer = await health_pb2_grpc.HealthStub(tls_channel).Check(health_pb2.HealthCheckRequest())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_only_the_auditor_reads_a_record_another_principal_made(
    secured: Secured, tls_channel: grpc.aio.Channel, denied_applicant: dict[str, Any]
) -> None:
    from expound.clients.client import explain_request

    stub = explain_pb2_grpc.ExplainServiceStub(tls_channel)
    made = await stub.Explain(
        explain_request(GBM, denied_applicant), metadata=bearer(secured.tokens["decider"])
    )
    ask = pb.GetRecordRequest(record_id=made.record_id)
    auditor, analyst = bearer(secured.tokens["auditor"]), bearer(secured.tokens["analyst"])
    assert (await stub.GetRecord(ask, metadata=auditor)).record_id == made.record_id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetRecord(ask, metadata=analyst)
    # As for an id that does not exist: the record is not even confirmed.
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == f"no record {made.record_id!r}"
    listed = await stub.ListRecords(pb.ListRecordsRequest(), metadata=auditor)
    assert [r.record_id for r in listed.records] == [made.record_id]
    assert list((await stub.ListRecords(pb.ListRecordsRequest(), metadata=analyst)).records) == []


async def test_an_analyst_reads_its_own_records(
    secured: Secured, tls_channel: grpc.aio.Channel, denied_applicant: dict[str, Any]
) -> None:
    from expound.clients.client import explain_request

    stub = explain_pb2_grpc.ExplainServiceStub(tls_channel)
    analyst = bearer(secured.tokens["analyst"])
    mine = await stub.Explain(explain_request(GBM, denied_applicant), metadata=analyst)
    await stub.Explain(
        explain_request(GBM, denied_applicant), metadata=bearer(secured.tokens["decider"])
    )
    decider = bearer(secured.tokens["decider"])
    for _ in range(3):  # newer records of another principal, ahead of the analyst's
        await stub.Explain(explain_request(GBM, denied_applicant), metadata=decider)
    got = await stub.GetRecord(pb.GetRecordRequest(record_id=mine.record_id), metadata=analyst)
    assert got.record_id == mine.record_id
    # Filtered in the query: a page of one holds the analyst's record, not an empty page
    # of someone else's.
    listed = await stub.ListRecords(pb.ListRecordsRequest(page_size=1), metadata=analyst)
    assert [r.record_id for r in listed.records] == [mine.record_id]
    assert listed.next_page_token == ""


async def test_a_refused_read_is_not_logged_as_a_read(
    secured: Secured, tls_channel: grpc.aio.Channel, denied_applicant: dict[str, Any]
) -> None:
    from expound.clients.client import explain_request

    stub = explain_pb2_grpc.ExplainServiceStub(tls_channel)
    made = await stub.Explain(
        explain_request(GBM, denied_applicant), metadata=bearer(secured.tokens["decider"])
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetRecord(
            pb.GetRecordRequest(record_id=made.record_id),
            metadata=bearer(secured.tokens["analyst"]),
        )
    auditor = bearer(secured.tokens["auditor"])
    await stub.GetRecord(pb.GetRecordRequest(record_id=made.record_id), metadata=auditor)
    log = await stub.ListAccessLog(
        pb.ListAccessLogRequest(record_id=made.record_id), metadata=auditor
    )
    assert [(e.principal, e.rpc) for e in log.entries] == [("auditor", "GetRecord")]


async def test_the_access_log_names_the_authenticated_principal(
    secured: Secured, tls_channel: grpc.aio.Channel
) -> None:
    import io
    import json
    import logging

    from expound.observability.logs import log_handler

    stream = io.StringIO()
    handler = log_handler("json", stream)
    logger = logging.getLogger("expound")
    level = logger.level
    logging.getLogger().addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        await call(tls_channel, "ListModels", bearer(secured.tokens["auditor"]))
        await call(tls_channel, "ReloadModels", bearer(secured.tokens["decider"]))
    finally:
        logging.getLogger().removeHandler(handler)
        logger.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = {line["rpc"]: line for line in lines if line["logger"] == "expound.access"}
    # The principal is still set when the call is reported, refused calls included.
    assert access["ListModels"]["principal"] == "auditor"
    assert access["ListModels"]["code"] == "OK"
    assert access["ReloadModels"]["principal"] == "decider"
    assert access["ReloadModels"]["code"] == "PERMISSION_DENIED"


async def test_only_a_role_granted_what_if_gets_an_unarchived_answer(
    secured: Secured, tls_channel: grpc.aio.Channel, denied_applicant: dict[str, Any]
) -> None:
    from expound.clients.client import explain_request

    stub = explain_pb2_grpc.ExplainServiceStub(tls_channel)
    auditor = bearer(secured.tokens["auditor"])
    what_if = explain_request(GBM, denied_applicant, what_if=True)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(what_if, metadata=bearer(secured.tokens["decider"]))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    answer = await stub.Explain(what_if, metadata=bearer(secured.tokens["analyst"]))
    assert (answer.archived, answer.record_id) == (False, "")
    # In a batch, the decider's what-if item alone is refused; its plain item is archived.
    items = [
        pb.BatchItem(item_id="plain", request=explain_request(GBM, denied_applicant)),
        pb.BatchItem(item_id="what-if", request=what_if),
    ]
    results = [
        r async for r in stub.ExplainBatch(iter(items), metadata=bearer(secured.tokens["decider"]))
    ]
    assert results[0].response.archived and results[0].response.record_id
    assert results[1].error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert results[1].error.message == "permission denied"
    listed = await stub.ListRecords(pb.ListRecordsRequest(), metadata=auditor)
    # The archive holds the one plain item, and nothing of either what-if answer.
    assert [r.record_id for r in listed.records] == [results[0].response.record_id]


def test_what_if_is_granted_only_to_the_analyst_by_default_and_checked() -> None:
    from expound.server.policy import PolicyError, parse_policy

    policy = load_policy(None)
    assert [role for role in sorted(ROLES) if policy.what_if([role])] == ["analyst"]
    with pytest.raises(PolicyError, match="what_if must be true or false"):
        parse_policy({"roles": {"a": {"rpcs": ["Explain"], "what_if": "yes"}}}, "test")
    with pytest.raises(PolicyError, match="what_if needs Explain"):
        parse_policy({"roles": {"a": {"rpcs": ["GetModel"], "what_if": True}}}, "test")
