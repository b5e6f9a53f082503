"""Records administration and accountability over the real gRPC service.

Holds, releases and expiries are RPCs whose events the service signs into the log; reads of
records are written to the access log; checkpoint reads write nothing; idempotency keys
belong to their principal; the archive's files are its owner's alone.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import grpc
import pytest

from expound.archive.audit import audit
from expound.archive.checkpoint import load_private_key
from expound.archive.records import KIND_HOLD, KIND_RELEASE
from expound.errors import IdempotencyConflict
from expound.server import convert
from expound.server.app import RunningServer, running_server
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM
from tests.support.callers import TEST_CALLER
from tests.unit.test_server import request


def rows(settings: Settings, table: str) -> int:
    with sqlite3.connect(settings.archive_path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def audit_archive(settings: Settings) -> Any:
    from expound.archive.retention import RetentionPolicy
    from expound.archive.sqlite import open_sqlite

    store = await open_sqlite(settings.archive_path, None, RetentionPolicy())
    try:
        key = load_private_key(settings.signing_key_path)
        return await audit(await store.read_log(), key.public_key())
    finally:
        await store.aclose()


async def test_holds_releases_and_history_are_signed_events_over_the_api(
    stub: Any, settings: Settings, denied_applicant: dict[str, Any]
) -> None:
    answer = await stub.Explain(request(GBM, denied_applicant, decision_id="loan-1"))
    hold = await stub.PlaceHold(pb.PlaceHoldRequest(record_id=answer.record_id, reason="case 7"))
    assert (hold.kind, hold.record_id, hold.actor, hold.reason) == (
        KIND_HOLD,
        answer.record_id,
        "anonymous",
        "case 7",
    )
    assert hold.seq == 1 and hold.target_seq == 0
    record = await stub.GetRecord(pb.GetRecordRequest(record_id=answer.record_id))
    assert record.legal_hold

    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stub.PlaceHold(pb.PlaceHoldRequest(record_id=answer.record_id, reason="other"))
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert hold.event_id in (again.value.details() or "") and "case 7" in (
        again.value.details() or ""
    )
    with pytest.raises(grpc.aio.AioRpcError) as expire:
        await stub.ExpireRecords(pb.ExpireRecordsRequest(record_ids=[answer.record_id]))
    assert expire.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    release = await stub.ReleaseHold(
        pb.ReleaseHoldRequest(record_id=answer.record_id, reason="settled")
    )
    assert (release.kind, release.hold_event_id, release.target_seq) == (
        KIND_RELEASE,
        hold.event_id,
        hold.seq,
    )
    history = await stub.GetRecordHistory(pb.GetRecordHistoryRequest(record_id=answer.record_id))
    assert [(e.kind, e.reason) for e in history.events] == [
        (KIND_HOLD, "case 7"),
        (KIND_RELEASE, "settled"),
    ]
    assert not (await stub.GetRecord(pb.GetRecordRequest(record_id=answer.record_id))).legal_hold
    report = await audit_archive(settings)
    assert report.ok and report.size == 3, report.problem


@pytest.mark.parametrize(
    ("method", "message", "field"),
    [
        ("PlaceHold", pb.PlaceHoldRequest(record_id="r"), "reason"),
        ("PlaceHold", pb.PlaceHoldRequest(reason="x"), "record_id"),
        ("ReleaseHold", pb.ReleaseHoldRequest(record_id="r", reason=" "), "reason"),
        ("PlaceHold", pb.PlaceHoldRequest(record_id="r", reason="x" * 1001), "reason"),
        ("ExpireRecords", pb.ExpireRecordsRequest(record_ids=[""]), "record_ids"),
    ],
)
async def test_admin_requests_are_validated(
    stub: Any, method: str, message: Any, field: str
) -> None:
    from tests.unit.test_server import bad_request_fields

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, method)(message)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in bad_request_fields(caught.value)


async def test_expiry_over_the_api_tombstones_due_records(
    models_dir: Path, tmp_path: Path, settings: Settings, denied_applicant: dict[str, Any]
) -> None:
    short = settings.model_copy(update={"retention_months": 0})
    async with (
        running_server(short) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        ids = [
            (await stub.Explain(request(GBM, denied_applicant, decision_id=f"d{n}"))).record_id
            for n in range(3)
        ]
        await stub.PlaceHold(pb.PlaceHoldRequest(record_id=ids[0], reason="case 9"))
        expired = await stub.ExpireRecords(pb.ExpireRecordsRequest(reason="policy run 1"))
        assert sorted(t.record_id for t in expired.tombstones) == sorted(ids[1:])
        assert {(t.actor, t.reason) for t in expired.tombstones} == {("anonymous", "policy run 1")}
        gone = await stub.GetRecord(pb.GetRecordRequest(record_id=ids[1], include_proof=True))
        assert gone.expired and gone.canonical_json == "" and gone.HasField("proof")
        assert not (await stub.GetRecord(pb.GetRecordRequest(record_id=ids[0]))).expired
    report = await audit_archive(short)
    assert report.ok and report.size == 6, report.problem


async def test_reads_of_records_are_in_the_access_log_with_their_request_id(
    stub: Any, denied_applicant: dict[str, Any]
) -> None:
    ids = [
        (await stub.Explain(request(GBM, denied_applicant, decision_id=f"d{n}"))).record_id
        for n in range(2)
    ]
    assert (await stub.ListAccessLog(pb.ListAccessLogRequest())).entries == []
    await stub.GetRecord(
        pb.GetRecordRequest(record_id=ids[0]), metadata=(("x-request-id", "read-1"),)
    )
    await stub.ListRecords(pb.ListRecordsRequest(), metadata=(("x-request-id", "list-1"),))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetRecord(pb.GetRecordRequest(record_id="no-such-record"))
    log = await stub.ListAccessLog(pb.ListAccessLogRequest())
    assert [(e.seq, e.rpc, e.request_id, list(e.record_ids)) for e in log.entries] == [
        (1, "GetRecord", "read-1", [ids[0]]),
        (2, "ListRecords", "list-1", [ids[1], ids[0]]),
    ]
    assert {e.principal for e in log.entries} == {"anonymous"}
    assert log.next_after_seq == 0
    page = await stub.ListAccessLog(pb.ListAccessLogRequest(page_size=1))
    assert [e.seq for e in page.entries] == [1] and page.next_after_seq == 1
    rest = await stub.ListAccessLog(pb.ListAccessLogRequest(after_seq=1))
    assert [e.seq for e in rest.entries] == [2]
    who = await stub.ListAccessLog(pb.ListAccessLogRequest(record_id=ids[1]))
    assert [(e.seq, e.rpc) for e in who.entries] == [(2, "ListRecords")]


async def test_a_hundred_checkpoint_reads_write_no_row(
    models_dir: Path, settings: Settings, denied_applicant: dict[str, Any]
) -> None:
    # Checkpoints on the service's default schedule: not every append.
    quiet = settings.model_copy(
        update={"checkpoint_every_records": 1000, "checkpoint_every_seconds": 3600}
    )
    async with (
        running_server(quiet) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        for n in range(3):
            await stub.Explain(request(GBM, denied_applicant, decision_id=f"d{n}"))
        before = (rows(quiet, "checkpoints"), rows(quiet, "access_log"))
        for _ in range(100):
            checkpoint = await stub.GetCheckpoint(pb.GetCheckpointRequest())
            assert checkpoint.size == 1
        assert (rows(quiet, "checkpoints"), rows(quiet, "access_log")) == before == (1, 0)
        assert checkpoint.note.startswith(f"{quiet.archive_log_id}\n1\n")
    assert rows(quiet, "checkpoints") == 2, "the last entries are signed at shutdown"


async def test_idempotency_keys_belong_to_their_principal(
    service: RunningServer, denied_applicant: dict[str, Any]
) -> None:
    sent = convert.explain_request_from_pb(request(GBM, denied_applicant, idempotency_key="k"))
    alice = await service.pipeline.explain(sent, principal="alice")
    again = await service.pipeline.explain(sent, principal="alice")
    bob = await service.pipeline.explain(sent, principal="bob")
    assert again.record_id == alice.record_id, "a retry replays the caller's own record"
    assert bob.record_id != alice.record_id, "another principal's key is a new record"
    changed = sent.model_copy(update={"decision_id": "other"})
    with pytest.raises(IdempotencyConflict) as conflict:
        await service.pipeline.explain(changed, principal="bob")
    assert bob.record_id in str(conflict.value) and alice.record_id not in str(conflict.value)
    carol = await service.pipeline.explain(changed, principal="carol")
    assert carol.record_id not in {alice.record_id, bob.record_id}
    stored, _ = await service.records.get_record(alice.record_id, False, TEST_CALLER)
    assert stored.principal == "alice" and stored.body()["principal"] == "alice"


async def test_the_archive_files_are_the_owners_alone(
    models_dir: Path, tmp_path: Path, settings: Settings, denied_applicant: dict[str, Any]
) -> None:
    home = tmp_path / "fresh" / "var"
    private = settings.model_copy(
        update={
            "archive_path": home / "archive.sqlite3",
            "signing_key_path": home / "keys" / "signing.pem",
        }
    )
    previous = os.umask(0o022)  # a permissive umask, as many services run with
    try:
        async with (
            running_server(private) as running,
            grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        ):
            stub = explain_pb2_grpc.ExplainServiceStub(channel)
            await stub.Explain(request(GBM, denied_applicant))
            files = [
                home / "archive.sqlite3",
                home / "archive.sqlite3-wal",
                home / "archive.sqlite3-shm",
                home / "keys" / "signing.pem",
            ]
            modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in files}
            assert modes == dict.fromkeys(modes, 0o600), modes
    finally:
        os.umask(previous)
    for directory in (home, home / "keys"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
