"""The archive contract: what every store (memory, SQLite, PostgreSQL) must do alike.

Written once; tests/unit runs it over memory and SQLite, tests/integration over PostgreSQL
(as the service role, and the retention role where holds and expiry need it).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive.checkpoint import verify_checkpoint
from expound.archive.merkle import EMPTY_ROOT, verify_consistency, verify_inclusion
from expound.archive.records import KIND_TOMBSTONE, NewRecord, canonical_json
from expound.archive.retention import RetentionPolicy
from expound.archive.store import ArchiveStore, DuplicateIdempotencyKey
from expound.errors import InvalidRequest, RetentionRefused
from expound.times import utc_now
from tests.support.archive_backends import Backend, fixed_signer
from tests.support.merkle_reference import MerkleTree


def new_record(n: int, key: str = "", model_id: str = "m1") -> NewRecord:
    created = utc_now()
    record_id = str(uuid.uuid4())
    body = {"schema": "test", "record_id": record_id, "n": n, "created_at": created}
    return NewRecord(
        record_id=record_id,
        model_id=model_id,
        decision_id=f"d-{n}",
        idempotency_key=key,
        request_sha256="0" * 64,
        created_at=created,
        decision="decline",
        canonical=canonical_json(body),
    )


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


async def fill(store: ArchiveStore, count: int) -> list[NewRecord]:
    records = [new_record(n) for n in range(count)]
    for record in records:
        await store.append(record)
    return records


async def checkpoint_sizes(store: ArchiveStore) -> list[int]:
    return [checkpoint.size for checkpoint in (await store.read_log()).checkpoints]


async def test_appends_form_a_merkle_log_with_signed_checkpoints(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(fixed_signer(key, every_records=4))
    try:
        records = await fill(store, 11)
        stored = [await store.get(r.record_id) for r in records]
        assert [s.seq for s in stored] == list(range(11))
        assert [s.leaf_hash for s in stored] == [r.leaf_hash for r in records]
        tree = MerkleTree([r.leaf_hash for r in records])
        checkpoints = (await store.read_log()).checkpoints
        assert [(c.size, c.root_hash) for c in checkpoints] == [
            (1, tree.root(1)),
            (5, tree.root(5)),
            (9, tree.root(9)),
        ]
        latest = await store.checkpoint()
        assert latest is not None and latest.size == 11 and latest.root_hash == tree.root()
        assert verify_checkpoint(key.public_key(), latest)
        assert (await backend.audit(key.public_key())).ok
    finally:
        await store.aclose()


async def test_every_inclusion_proof_verifies_against_a_signed_checkpoint(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(fixed_signer(key, every_records=5))
    try:
        records = await fill(store, 13)
        for record in records:
            stored = await store.get(record.record_id)
            proof = await store.prove_inclusion(stored)
            checkpoint = proof.checkpoint
            assert checkpoint.size > stored.seq
            assert verify_checkpoint(key.public_key(), checkpoint)
            assert verify_inclusion(
                record.leaf_hash,
                stored.seq,
                checkpoint.size,
                proof.audit_path,
                checkpoint.root_hash,
            )
            assert not verify_inclusion(
                record.leaf_hash,
                (stored.seq + 1) % 13,
                checkpoint.size,
                proof.audit_path,
                checkpoint.root_hash,
            )
    finally:
        await store.aclose()


async def test_consistency_between_every_pair_of_checkpoints(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(fixed_signer(key, every_records=3))
    try:
        await fill(store, 10)
        sizes = await checkpoint_sizes(store)
        assert sizes == [1, 4, 7, 10]
        for new_size in sizes:
            for old_size in [0, *[s for s in sizes if s <= new_size]]:
                proof = await store.prove_consistency(old_size, new_size)
                old_root = proof.old.root_hash if proof.old else EMPTY_ROOT
                assert verify_consistency(
                    old_size, new_size, old_root, proof.new.root_hash, proof.path
                ), (old_size, new_size)
        with pytest.raises(InvalidRequest, match="no signed checkpoint"):
            await store.prove_consistency(2, 10)
        with pytest.raises(InvalidRequest, match="larger"):
            await store.prove_consistency(10, 4)
    finally:
        await store.aclose()


async def test_a_checkpoint_is_signed_after_the_interval_elapses(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(fixed_signer(key, every_records=1000, every_seconds=0.2))
    try:
        await fill(store, 3)
        assert await checkpoint_sizes(store) == [1]
        await asyncio.sleep(0.25)
        await fill(store, 1)
        assert await checkpoint_sizes(store) == [1, 4]
    finally:
        await store.aclose()


async def test_concurrent_writers_and_two_store_instances_keep_one_log(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    first = await backend.open(fixed_signer(key, every_records=7))
    second = await backend.open(fixed_signer(key, every_records=7))
    try:
        records = [new_record(n) for n in range(48)]
        await asyncio.gather(
            *[(first if n % 2 else second).append(r) for n, r in enumerate(records)]
        )
        seqs = sorted([(await first.get(r.record_id)).seq for r in records])
        assert seqs == list(range(48))
        report = await backend.audit(key.public_key())
        assert report.ok, report.problem
        assert report.size == 48
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_reused_idempotency_key_is_reported_and_nothing_is_written(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(fixed_signer(key))
    try:
        await store.append(new_record(1, key="k"))
        with pytest.raises(DuplicateIdempotencyKey):
            await store.append(new_record(2, key="k"))
        await store.append(new_record(3))
        assert (await backend.audit(key.public_key())).size == 2
        assert (await store.find_by_idempotency_key("k")) is not None
    finally:
        await store.aclose()


async def test_a_different_signing_key_is_refused(backend: Backend, key: Ed25519PrivateKey) -> None:
    store = await backend.open(fixed_signer(key, every_records=1))
    await fill(store, 1)
    await store.aclose()
    with pytest.raises(ValueError, match="did not sign"):
        await backend.open(fixed_signer(Ed25519PrivateKey.generate()))


async def test_retention_refuses_early_or_held_expiry_and_tombstones_the_rest(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    retention = RetentionPolicy(default_months=25, months_by_model={"short": 0})
    store = await backend.open(fixed_signer(key, every_records=2), retention, role="retention")
    try:
        kept = new_record(0, model_id="long")
        held = new_record(1, model_id="short")
        due = new_record(2, model_id="short")
        for record in (kept, held, due):
            await store.append(record)
        assert (await store.get(kept.record_id)).retain_until[:4] == str(datetime.now(UTC).year + 2)
        await store.set_legal_hold(held.record_id, True, "litigation 42")
        with pytest.raises(RetentionRefused, match="retained until"):
            await store.expire([kept.record_id])
        with pytest.raises(RetentionRefused, match="legal hold"):
            await store.expire([held.record_id])

        report = await store.expire()
        assert [r.record_id for r in report.expired] == [due.record_id]
        gone = await store.get(due.record_id)
        assert gone.expired and gone.canonical == b"" and gone.leaf_hash == due.leaf_hash
        (tombstone,) = report.tombstones
        assert tombstone.kind == KIND_TOMBSTONE and tombstone.seq == 3
        assert (await store.get(held.record_id)).legal_hold

        proof = await store.prove_inclusion(gone)
        assert verify_inclusion(
            due.leaf_hash, 2, proof.checkpoint.size, proof.audit_path, proof.checkpoint.root_hash
        )
        assert (await backend.audit(key.public_key())).ok

        await store.set_legal_hold(held.record_id, False, "")
        assert [r.record_id for r in (await store.expire()).expired] == [held.record_id]
        assert (await backend.audit(key.public_key())).ok
    finally:
        await store.aclose()


async def test_a_second_hold_is_refused_and_the_first_reason_stands(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(fixed_signer(key), role="retention")
    try:
        (record,) = await fill(store, 1)
        held = await store.set_legal_hold(record.record_id, True, "litigation 42")
        assert held.legal_hold
        with pytest.raises(RetentionRefused, match=r"already under legal hold .*litigation 42"):
            await store.set_legal_hold(record.record_id, True, "another matter")
        assert (await store.get(record.record_id)).legal_hold
        released = await store.set_legal_hold(record.record_id, False, "")
        assert not released.legal_hold
        assert not (await store.set_legal_hold(record.record_id, False, "")).legal_hold
        again = await store.set_legal_hold(record.record_id, True, "another matter")
        assert again.legal_hold
        assert (await backend.audit(key.public_key())).ok, "holds are not log entries"
    finally:
        await store.aclose()


async def test_list_pages_newest_first_with_filters(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    from expound.archive.store import RecordFilter

    store = await backend.open(fixed_signer(key))
    try:
        records = [new_record(n, model_id="a" if n % 2 else "b") for n in range(7)]
        for record in records:
            await store.append(record)
        first = await store.list(RecordFilter(model_id="a"), 2, "")
        assert [r.record_id for r in first.records] == [records[5].record_id, records[3].record_id]
        second = await store.list(RecordFilter(model_id="a"), 2, first.next_page_token)
        assert [r.record_id for r in second.records] == [records[1].record_id]
        assert second.next_page_token == ""
        (one,) = (await store.list(RecordFilter(decision_id="d-4"), 0, "")).records
        assert one.record_id == records[4].record_id and one.canonical == records[4].canonical
        with pytest.raises(InvalidRequest, match="page token"):
            await store.list(RecordFilter(), 10, "not-a-token")
    finally:
        await store.aclose()


async def test_an_empty_log_has_no_checkpoint_and_unknown_records_are_not_found(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    from expound.errors import RecordNotFound

    store = await backend.open(fixed_signer(key))
    try:
        assert await store.checkpoint() is None
        assert await store.find_by_idempotency_key("nobody") is None
        with pytest.raises(RecordNotFound):
            await store.get("no-such-record")
        with pytest.raises(RecordNotFound):
            await store.expire(["no-such-record"])
    finally:
        await store.aclose()
