"""Proofs over the real gRPC service, the standalone verifier and the archive commands."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from expound.archive.checkpoint import load_private_key, public_key_pem, verify_checkpoint
from expound.archive.merkle import EMPTY_ROOT, leaf_hash, verify_consistency
from expound.archive.store import RecordFilter
from expound.clients.bundles import (
    BundleInvalid,
    bundle_from_record,
    checkpoint_from_pb,
    verify_bundle,
)
from expound.clients.cli import main
from expound.clients.export import bundle_from_row
from expound.server.app import RunningServer
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from tests.conftest import GBM, ROOT
from tests.support import signed_note
from tests.support.callers import TEST_CALLER
from tests.unit.test_server import request

NOTICES = ROOT / "tests" / "fixtures" / "notices"


async def explain_some(stub: Any, applicant: dict[str, Any], count: int) -> list[str]:
    ids = []
    for n in range(count):
        response = await stub.Explain(request(GBM, applicant, decision_id=f"loan-{n}"))
        ids.append(response.record_id)
    return ids


async def cli(argv: list[str]) -> int:
    """Runs the command line off the event loop that serves it."""
    return await asyncio.to_thread(main, argv)


def public_pem(settings: Settings) -> bytes:
    return public_key_pem(load_private_key(settings.signing_key_path))


async def test_the_signing_key_is_created_private(
    service: RunningServer, settings: Settings
) -> None:
    mode = stat.S_IMODE(settings.signing_key_path.stat().st_mode)
    assert mode == 0o600


async def test_get_record_with_proof_gives_a_bundle_anyone_can_verify(
    stub: Any, settings: Settings, denied_applicant: dict[str, Any]
) -> None:
    ids = await explain_some(stub, denied_applicant, 5)
    pem = public_pem(settings)
    for seq, record_id in enumerate(ids):
        record = await stub.GetRecord(pb.GetRecordRequest(record_id=record_id, include_proof=True))
        assert record.seq == seq and record.kind == "record" and not record.expired
        assert record.retain_until > record.created_at.ToJsonString()
        proof = record.proof
        assert proof.leaf_hash == leaf_hash(record.canonical_json.encode())
        assert proof.tree_size == proof.checkpoint.size >= seq + 1
        verified = verify_bundle(bundle_from_record(record), pem)
        assert (verified.record_id, verified.leaf_index) == (record_id, seq)

    record = await stub.GetRecord(pb.GetRecordRequest(record_id=ids[2], include_proof=True))
    bundle = bundle_from_record(record)
    altered = dict(bundle, record=bundle["record"].replace("decline", "approve"))
    with pytest.raises(BundleInvalid, match="altered"):
        verify_bundle(altered, pem)
    moved = dict(bundle, leaf_index=3)
    with pytest.raises(BundleInvalid, match="audit path"):
        verify_bundle(moved, pem)
    other_key = public_key_pem(load_private_key(settings.signing_key_path).public_key())
    assert verify_bundle(bundle, other_key).leaf_index == 2
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    # Another archive's key is told apart from a forged signature (both were "does not
    # verify under this key"), naming the two key ids.
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(BundleInvalid, match=r"signed by key [0-9a-f]{8} .*another archive's key"):
        verify_bundle(bundle, public_key_pem(stranger))
    signature = bundle["checkpoint"]["signature"]
    forged = {
        **bundle["checkpoint"],
        "signature": ("0" if signature[0] != "0" else "1") + signature[1:],
    }
    with pytest.raises(BundleInvalid, match=r"its signature does not verify.*altered"):
        verify_bundle(dict(bundle, checkpoint=forged), pem)
    plain = await stub.GetRecord(pb.GetRecordRequest(record_id=ids[0]))
    assert not plain.HasField("proof")


async def test_checkpoints_and_consistency_over_the_api(
    stub: Any, settings: Settings, denied_applicant: dict[str, Any]
) -> None:
    from expound.archive.checkpoint import load_public_key

    key = load_public_key(public_pem(settings))
    await explain_some(stub, denied_applicant, 2)
    first = checkpoint_from_pb(await stub.GetCheckpoint(pb.GetCheckpointRequest()))
    assert first.size == 2 and verify_checkpoint(key, first)
    await explain_some(stub, denied_applicant, 3)
    proof = await stub.GetConsistencyProof(pb.GetConsistencyProofRequest(old_size=first.size))
    new = checkpoint_from_pb(proof.new_checkpoint)
    assert new.size == 5 and verify_checkpoint(key, new)
    assert checkpoint_from_pb(proof.old_checkpoint) == first
    assert verify_consistency(2, 5, first.root_hash, new.root_hash, list(proof.proof))
    empty = await stub.GetConsistencyProof(pb.GetConsistencyProofRequest(old_size=0, new_size=5))
    assert not empty.HasField("old_checkpoint")
    assert verify_consistency(0, 5, EMPTY_ROOT, new.root_hash, list(empty.proof))
    again = checkpoint_from_pb(await stub.GetCheckpoint(pb.GetCheckpointRequest(size=2)))
    assert again == first


async def test_proof_requests_for_unsigned_sizes_are_invalid(
    stub: Any, denied_applicant: dict[str, Any]
) -> None:
    import grpc

    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await stub.GetCheckpoint(pb.GetCheckpointRequest())
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await explain_some(stub, denied_applicant, 1)
    for bad in (
        pb.GetConsistencyProofRequest(old_size=1, new_size=7),
        pb.GetConsistencyProofRequest(old_size=5, new_size=0),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.GetConsistencyProof(bad)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_archive_commands_verify_and_audit(
    service: RunningServer,
    settings: Settings,
    denied_applicant: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = ["--target", f"127.0.0.1:{service.port}"]
    monkeypatch.setenv("EXPOUND_SIGNING_KEY_PATH", str(settings.signing_key_path))
    applicant = tmp_path / "applicant.json"
    applicant.write_text(json.dumps(denied_applicant))
    for _ in range(3):
        explain = [*target, "explain", "--model", GBM, "--applicant", str(applicant)]
        assert await cli(explain) == 0
    capsys.readouterr()

    assert await cli(["archive", "public-key"]) == 0
    pem = tmp_path / "archive.pub.pem"
    pem.write_text(capsys.readouterr().out)
    assert pem.read_text() == public_pem(settings).decode()

    record_id = await _first_record_id(service)
    assert await cli([*target, "records", "get", record_id, "--proof"]) == 0
    bundle = tmp_path / "bundle.json"
    bundle.write_text(capsys.readouterr().out)
    assert await cli(["archive", "verify", str(bundle), "--public-key", str(pem)]) == 0
    assert f"verified {record_id}" in capsys.readouterr().out

    tampered = json.loads(bundle.read_text())
    tampered["record"] = tampered["record"].replace('"decline"', '"approve"')
    bundle.write_text(json.dumps(tampered))
    assert await cli(["archive", "verify", str(bundle), "--public-key", str(pem)]) == 1
    assert "INVALID" in capsys.readouterr().out

    assert await cli([*target, "archive", "checkpoint"]) == 0
    kept = tmp_path / "checkpoint.json"
    kept.write_text(capsys.readouterr().out)
    args = ["archive", "audit", "--db", str(settings.archive_path), "--public-key", str(pem)]
    assert await cli([*args, "--checkpoint", str(kept)]) == 0
    assert capsys.readouterr().out.startswith("ok: 3 entries")

    # What a witness needs: the signed note and the verifier key, checked independently.
    assert await cli([*target, "archive", "checkpoint", "--note"]) == 0
    note = capsys.readouterr().out
    assert await cli(["archive", "public-key", "--vkey"]) == 0
    vkey = signed_note.parse_verifier_key(capsys.readouterr().out.strip())
    head = signed_note.parse_checkpoint(signed_note.open_note(note, [vkey]))
    assert (head.origin, head.size) == (settings.archive_log_id, 3)


async def _first_record_id(service: RunningServer) -> str:
    from expound.archive.store import RecordFilter

    page = await service.records.list_records(RecordFilter(), 1, "", TEST_CALLER)
    return page.records[0].record_id


async def test_export_notice_hold_and_expiry_from_the_command_line(
    models_dir: Path,
    tmp_path: Path,
    denied_applicant: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    from expound.server.app import running_server

    settings = Settings(
        port=0,
        model_dir=models_dir,
        archive_path=tmp_path / "archive.sqlite3",
        signing_key_path=tmp_path / "key.pem",
        retention_months=0,
        llm_mode="off",
        grace_seconds=0.5,
        checkpoint_every_records=1,
    )
    for name, value in (
        ("ARCHIVE_PATH", settings.archive_path),
        ("SIGNING_KEY_PATH", settings.signing_key_path),
        ("RETENTION_MONTHS", 0),
    ):
        monkeypatch.setenv(f"EXPOUND_{name}", str(value))
    async with running_server(settings) as service:
        target = ["--target", f"127.0.0.1:{service.port}"]
        applicant = tmp_path / "applicant.json"
        applicant.write_text(json.dumps(denied_applicant))
        for n in range(3):
            explain = [*target, "explain", "--model", GBM, "--applicant", str(applicant)]
            assert await cli([*explain, "--decision-id", f"loan-{n}"]) == 0
        page = await service.records.list_records(RecordFilter(), 10, "", TEST_CALLER)
        held, due, _ = [r.record_id for r in page.records]
        pem = tmp_path / "pub.pem"
        capsys.readouterr()
        assert await cli(["archive", "public-key"]) == 0
        pem.write_text(capsys.readouterr().out)

        notice = tmp_path / "notice.html"
        to = [
            "--creditor",
            str(NOTICES / "creditor.toml"),
            "--applicant",
            str(NOTICES / "applicant.json"),
        ]
        assert await cli([*target, "records", "notice", due, *to, "--out", str(notice)]) == 0
        html = notice.read_text()
        assert "Notice of Action Taken" in html and "declined" in html and due in html
        record = json.loads(
            (await service.records.get_record(due, include_proof=False, caller=TEST_CALLER))[
                0
            ].canonical
        )
        for reason in record["response"]["principal_reasons"]:
            assert reason["text"].split("'")[0][:30] in html

        exported = tmp_path / "export.jsonl"
        assert await cli([*target, "records", "export", "--out", str(exported)]) == 0
        lines = exported.read_text().splitlines()
        assert [json.loads(line)["leaf_index"] for line in lines] == [0, 1, 2]
        assert await cli(["archive", "verify", str(exported), "--public-key", str(pem)]) == 0
        table = tmp_path / "export.parquet"
        parquet = [*target, "records", "export", "--format", "parquet", "--out", str(table)]
        assert await cli(parquet) == 0
        rows = pq.read_table(table).to_pylist()
        assert len(rows) == 3
        assert verify_bundle(bundle_from_row(rows[1]), pem.read_bytes()).leaf_index == 1
        assert await cli(["archive", "verify", str(table), "--public-key", str(pem)]) == 0

        capsys.readouterr()
        assert await cli([*target, "archive", "hold", held, "--reason", "dispute 7"]) == 0
        assert f"held {held}" in capsys.readouterr().out
        assert await cli([*target, "archive", "expire", held]) == 1
        assert "legal hold" in capsys.readouterr().err
        assert await cli([*target, "archive", "expire"]) == 0
        assert "2 payload(s) removed" in capsys.readouterr().out
        assert await cli([*target, "archive", "history", held]) == 0
        (event,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert (event["kind"], event["actor"], event["reason"]) == (
            "hold",
            "anonymous",
            "dispute 7",
        )
        gone, _ = await service.records.get_record(due, include_proof=False, caller=TEST_CALLER)
        assert gone.expired and gone.canonical == b""
        assert await cli([*target, "records", "notice", due, *to]) == 2
        assert await cli([*target, "records", "get", due, "--proof"]) == 0
        bundle_path = tmp_path / "expired.json"
        bundle_path.write_text(capsys.readouterr().out)
        assert await cli(["archive", "verify", str(bundle_path), "--public-key", str(pem)]) == 0
        assert "payload expired" in capsys.readouterr().out
        args = ["archive", "audit", "--db", str(settings.archive_path), "--public-key", str(pem)]
        assert await cli(args) == 0
        assert capsys.readouterr().out.startswith("ok: 6 entries")
        with pytest.raises(SystemExit) as usage:
            await cli(["archive", "audit", "--db", str(settings.archive_path)])
        assert usage.value.code == 2
        assert "--public-key --no-signature-check" in capsys.readouterr().err.replace("|", " ")


async def test_a_proof_not_yet_covered_says_when_to_retry(
    settings: Settings, denied_applicant: dict[str, Any]
) -> None:
    import grpc

    from expound.server.app import running_server
    from expound.v1 import explain_pb2_grpc
    from tests.support.wire_status import assert_receivable, rich_status

    # Checkpoints by count only after 1,000 records, by time every 40 s: the first append
    # signs one (none was due yet), the second record has none yet, and a read does not
    # sign one.
    quiet = settings.model_copy(
        update={"checkpoint_every_records": 1000, "checkpoint_every_seconds": 40.0}
    )
    async with (
        running_server(quiet) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        _, record_id = await explain_some(stub, denied_applicant, 2)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetRecord(pb.GetRecordRequest(record_id=record_id, include_proof=True))
    error = caught.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "not yet covered by a signed checkpoint" in (error.details() or "")
    assert_receivable(error)
    from google.rpc import error_details_pb2

    delays = []
    for detail in rich_status(error).details:
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(retry):
            delays.append(retry.retry_delay.ToTimedelta().total_seconds())
    assert delays == [10.0]  # a quarter of the interval: when the checkpoint task looks
