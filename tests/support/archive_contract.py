"""The archive contract: what every store (memory, SQLite, PostgreSQL) must do alike.

Written once; tests/unit runs it over memory and SQLite, tests/integration over PostgreSQL
(as the service role, and the retention role where holds and expiry need it).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive import merkle
from expound.archive.checkpoint import verify_checkpoint
from expound.archive.merkle import EMPTY_ROOT, verify_consistency, verify_inclusion
from expound.archive.records import (
    KIND_HOLD,
    KIND_RECORD,
    KIND_RELEASE,
    KIND_TOMBSTONE,
    NewRecord,
    StoredRecord,
)
from expound.archive.retention import RetentionPolicy
from expound.archive.store import ArchiveStore, DuplicateIdempotencyKey
from expound.errors import ArchiveUnavailable, InvalidRequest, RetentionRefused
from expound.times import parse_utc, utc_now
from tests.support.archive_backends import Backend, fixed_signer
from tests.support.merkle_reference import MerkleTree


def new_record(n: int, key: str = "", model_id: str = "m1", principal: str = "p1") -> NewRecord:
    body = {
        "schema": "test",
        "kind": KIND_RECORD,
        "record_id": str(uuid.uuid4()),
        "created_at": utc_now(),
        "model_id": model_id,
        "decision_id": f"d-{n}",
        "decision": "decline",
        "principal": principal,
        "idempotency_key": key,
        "request_sha256": "0" * 64,
        "n": n,
    }
    return NewRecord.from_body(body)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


async def fill(store: ArchiveStore, count: int) -> list[StoredRecord]:
    """Appends ``count`` records; returns them as appended (retain-until sealed in)."""
    return [await store.append(new_record(n)) for n in range(count)]


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
        assert all(merkle.leaf_hash(s.canonical) == s.leaf_hash for s in stored)
        tree = MerkleTree([r.leaf_hash for r in records])
        checkpoints = (await store.read_log()).checkpoints
        assert [(c.size, c.root_hash) for c in checkpoints] == [
            (1, tree.root(1)),
            (5, tree.root(5)),
            (9, tree.root(9)),
        ]
        assert (await store.checkpoint()) == checkpoints[-1], "a read signs nothing"
        latest = await store.publish_checkpoint(force=True)
        assert latest is not None and latest.size == 11 and latest.root_hash == tree.root()
        assert (await store.checkpoint()) == latest
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
        with pytest.raises(ArchiveUnavailable, match="not yet covered"):
            await store.prove_inclusion(records[12])
        assert (await store.publish_checkpoint()) is None, "not due: 2 of 5, and no time"
        signed = await store.publish_checkpoint(force=True)
        assert signed is not None and signed.size == 13
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
        first = await store.append(new_record(1, key="k"))
        with pytest.raises(DuplicateIdempotencyKey):
            await store.append(new_record(2, key="k"))
        await store.append(new_record(3))
        assert (await backend.audit(key.public_key())).size == 2
        found = await store.find_by_idempotency_key("p1", "k")
        assert found is not None and found.record_id == first.record_id
    finally:
        await store.aclose()


async def test_idempotency_keys_are_per_principal(backend: Backend, key: Ed25519PrivateKey) -> None:
    store = await backend.open(fixed_signer(key))
    try:
        alice = await store.append(new_record(1, key="k", principal="alice"))
        bob = await store.append(new_record(1, key="k", principal="bob"))
        assert alice.record_id != bob.record_id
        found = await store.find_by_idempotency_key("bob", "k")
        assert found is not None and found.record_id == bob.record_id
        assert found.principal == "bob"
        assert await store.find_by_idempotency_key("carol", "k") is None
        with pytest.raises(DuplicateIdempotencyKey):
            await store.append(new_record(2, key="k", principal="alice"))
        assert (await backend.audit(key.public_key())).ok
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
    store = await backend.open(fixed_signer(key, every_records=2), retention)
    try:
        kept, held, due = [
            await store.append(new_record(n, model_id=model))
            for n, model in enumerate(("long", "short", "short"))
        ]
        assert kept.retain_until[:4] == str(datetime.now(UTC).year + 2)
        assert kept.body()["retain_until"] == kept.retain_until, "the payload holds the date"
        await store.place_hold(held.record_id, "counsel", "litigation 42")
        with pytest.raises(RetentionRefused, match="retained until"):
            await store.expire("clerk", [kept.record_id])
        with pytest.raises(RetentionRefused, match="legal hold"):
            await store.expire("clerk", [held.record_id])

        report = await store.expire("clerk")
        assert [r.record_id for r in report.expired] == [due.record_id]
        gone = await store.get(due.record_id)
        assert gone.expired and gone.canonical == b"" and gone.leaf_hash == due.leaf_hash
        (tombstone,) = report.tombstones
        assert tombstone.kind == KIND_TOMBSTONE and tombstone.seq == 4
        assert (tombstone.principal, tombstone.target_seq) == ("clerk", due.seq)
        assert tombstone.body()["reason"] == "retention period ended"
        assert (await store.get(held.record_id)).legal_hold

        await store.publish_checkpoint(force=True)
        proof = await store.prove_inclusion(gone)
        assert verify_inclusion(
            due.leaf_hash, 2, proof.checkpoint.size, proof.audit_path, proof.checkpoint.root_hash
        )
        assert (await backend.audit(key.public_key())).ok

        await store.release_hold(held.record_id, "counsel", "settled")
        twice = await store.expire("clerk", [held.record_id, held.record_id])
        assert [r.record_id for r in twice.expired] == [held.record_id]
        assert len(twice.tombstones) == 1
        assert (await backend.audit(key.public_key())).ok
    finally:
        await store.aclose()


async def test_the_log_decides_the_retention_date_it_hashes(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(fixed_signer(key), RetentionPolicy(default_months=25))
    try:
        record = new_record(1)
        due = store.retain_until(record.model_id, record.created_at)
        early = record.sealed("2000-01-01T00:00:00.000000Z")
        stored = await store.append(early)
        assert stored.retain_until == stored.body()["retain_until"] == due
        assert stored.leaf_hash != early.leaf_hash, "an early date was replaced, then hashed"
        other = new_record(2)
        built = other.sealed(store.retain_until(other.model_id, other.created_at))
        assert (await store.append(built)).leaf_hash == built.leaf_hash, "kept as built"
    finally:
        await store.aclose()


async def test_holds_and_releases_are_signed_log_events_with_their_history(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(fixed_signer(key, every_records=1))
    try:
        (record,) = await fill(store, 1)
        hold = await store.place_hold(record.record_id, "counsel", "litigation 42")
        assert (hold.kind, hold.seq, hold.target_seq, hold.principal) == (
            KIND_HOLD,
            1,
            record.seq,
            "counsel",
        )
        assert hold.body()["reason"] == "litigation 42"
        assert (await store.get(record.record_id)).legal_hold
        with pytest.raises(RetentionRefused, match=rf"already under legal hold {hold.record_id}"):
            await store.place_hold(record.record_id, "another", "another matter")
        release = await store.release_hold(record.record_id, "counsel", "settled")
        assert (release.kind, release.target_seq) == (KIND_RELEASE, hold.seq)
        assert release.body()["hold_record_id"] == hold.record_id
        assert not (await store.get(record.record_id)).legal_hold
        with pytest.raises(RetentionRefused, match="not under legal hold"):
            await store.release_hold(record.record_id, "counsel", "again")
        again = await store.place_hold(record.record_id, "another", "another matter")
        assert (await store.get(record.record_id)).legal_hold

        history = await store.history(record.record_id)
        assert [(e.kind, e.principal) for e in history] == [
            (KIND_HOLD, "counsel"),
            (KIND_RELEASE, "counsel"),
            (KIND_HOLD, "another"),
        ]
        assert history[-1].record_id == again.record_id
        with pytest.raises(RetentionRefused, match="nothing to hold"):
            await store.place_hold(hold.record_id, "counsel", "a hold on a hold")
        report = await backend.audit(key.public_key())
        assert report.ok and report.size == 4, "every act is an entry the audit proves"
    finally:
        await store.aclose()


async def test_checkpoint_reads_never_write(backend: Backend, key: Ed25519PrivateKey) -> None:
    store = await backend.open(fixed_signer(key, every_records=1000, every_seconds=3600))
    try:
        await fill(store, 3)
        assert await checkpoint_sizes(store) == [1]
        for _ in range(100):
            latest = await store.checkpoint()
            assert latest is not None and latest.size == 1
        assert await checkpoint_sizes(store) == [1], "100 reads signed nothing"
        assert (await store.publish_checkpoint(force=True)) is not None
        assert await checkpoint_sizes(store) == [1, 3]
        assert (await store.publish_checkpoint(force=True)) is None, "the log did not grow"
    finally:
        await store.aclose()


async def test_the_access_log_keeps_every_read_in_order(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    from expound.archive.store import AccessEntry

    store = await backend.open(fixed_signer(key))
    try:
        entries = [
            AccessEntry(utc_now(), f"auditor-{n}", "GetRecord", f"req-{n}", (f"r-{n}", "x"))
            for n in range(5)
        ]
        for entry in entries:
            await store.log_access(entry)
        read = await store.read_access_log()
        assert [e.seq for e in read] == [1, 2, 3, 4, 5]
        assert [replace(e, seq=0) for e in read] == entries
        assert [e.seq for e in await store.read_access_log(after=3)] == [4, 5]
        assert [e.seq for e in await store.read_access_log(after=1, limit=2)] == [2, 3]
        await store.log_access(AccessEntry(utc_now(), "auditor-5", "ListRecords", "req-5", ()))
        assert (await store.read_access_log(after=5))[0].record_ids == ()
        who = await store.read_access_log(record_id="x")
        assert [e.principal for e in who] == [f"auditor-{n}" for n in range(5)]
        assert [e.seq for e in await store.read_access_log(record_id="r-3")] == [4]
        assert [e.seq for e in await store.read_access_log(after=4, record_id="r-3")] == []
    finally:
        await store.aclose()


async def test_list_pages_newest_first_with_filters(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    from expound.archive.store import RecordFilter

    store = await backend.open(fixed_signer(key))
    try:
        records = [
            await store.append(new_record(n, model_id="a" if n % 2 else "b")) for n in range(7)
        ]
        first = await store.list(RecordFilter(model_id="a"), 2, "")
        assert [r.record_id for r in first.records] == [records[5].record_id, records[3].record_id]
        second = await store.list(RecordFilter(model_id="a"), 2, first.next_page_token)
        assert [r.record_id for r in second.records] == [records[1].record_id]
        assert second.next_page_token == ""
        mine = await store.append(new_record(7, model_id="a", principal="analyst-1"))
        (own,) = (await store.list(RecordFilter(principal="analyst-1"), 10, "")).records
        assert own.record_id == mine.record_id
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
        assert await store.find_by_idempotency_key("p1", "nobody") is None
        with pytest.raises(RecordNotFound):
            await store.get("no-such-record")
        with pytest.raises(RecordNotFound):
            await store.expire("clerk", ["no-such-record"])
    finally:
        await store.aclose()


# -- group commit ----------------------------------------------------------------------------


async def test_appends_arriving_together_share_one_transaction_and_the_same_log(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    grouped = await backend.open(fixed_signer(key, every_records=4))
    try:
        records = [new_record(n) for n in range(11)]
        stored = await asyncio.gather(*[grouped.append(record) for record in records])
        # Queued before the first commit ran: one transaction for all eleven.
        assert grouped.transactions == 1
        assert [s.seq for s in stored] == list(range(11))
        assert [s.record_id for s in stored] == [r.record_id for r in records]
        tree = MerkleTree([s.leaf_hash for s in stored])
        # Checkpoints where one-at-a-time appends would have signed them.
        checkpoints = (await grouped.read_log()).checkpoints
        assert [(c.size, c.root_hash) for c in checkpoints] == [
            (1, tree.root(1)),
            (5, tree.root(5)),
            (9, tree.root(9)),
        ]
        for record in stored:
            assert (await grouped.get(record.record_id)).seq == record.seq
        report = await backend.audit(key.public_key())
        assert report.ok and report.size == 11, report.problem
    finally:
        await grouped.aclose()


async def test_group_commit_bounds_its_groups_and_can_be_turned_off(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    bounded = await backend.open(fixed_signer(key), max_group=4)
    alone = await backend.open(fixed_signer(key), max_group=1)
    try:
        await asyncio.gather(*[bounded.append(new_record(n)) for n in range(10)])
        assert bounded.transactions == 3  # 4 + 4 + 2
        await asyncio.gather(*[alone.append(new_record(n)) for n in range(3)])
        assert alone.transactions == 0, "grouping off: each append its own transaction"
        report = await backend.audit(key.public_key())
        assert report.ok and report.size == 13, report.problem
    finally:
        await bounded.aclose()
        await alone.aclose()


async def test_a_key_taken_twice_in_one_group_is_written_once(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(fixed_signer(key))
    try:
        outcomes = await asyncio.gather(
            store.append(new_record(1, key="k")),
            store.append(new_record(2, key="k")),
            store.append(new_record(3, key="k", principal="p2")),
            store.append(new_record(4)),
            return_exceptions=True,
        )
        first, second, other_principal, unkeyed = outcomes
        assert isinstance(second, DuplicateIdempotencyKey)
        assert isinstance(first, StoredRecord) and isinstance(unkeyed, StoredRecord)
        assert isinstance(other_principal, StoredRecord)
        assert store.transactions == 1
        # The second caller replays the first: it is committed by the time it is told.
        found = await store.find_by_idempotency_key("p1", "k")
        assert found is not None and found.record_id == first.record_id
        assert sorted([first.seq, other_principal.seq, unkeyed.seq]) == [0, 1, 2]
        assert (await backend.audit(key.public_key())).size == 3
    finally:
        await store.aclose()


async def test_a_key_already_in_the_log_fails_only_its_own_caller_in_a_group(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(fixed_signer(key))
    try:
        taken = await store.append(new_record(0, key="k"))
        outcomes = await asyncio.gather(
            store.append(new_record(1)),
            store.append(new_record(2, key="k")),
            store.append(new_record(3)),
            return_exceptions=True,
        )
        assert isinstance(outcomes[1], DuplicateIdempotencyKey)
        written = [o for o in outcomes if isinstance(o, StoredRecord)]
        assert sorted(o.seq for o in written) == [1, 2]
        found = await store.find_by_idempotency_key("p1", "k")
        assert found is not None and found.record_id == taken.record_id
        report = await backend.audit(key.public_key())
        assert report.ok and report.size == 3, report.problem
    finally:
        await store.aclose()


async def test_a_failed_group_fails_every_caller_and_writes_nothing(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(fixed_signer(key, every_records=1))
    try:
        existing = await store.append(new_record(0))
        body = {**json.loads(new_record(2).canonical), "record_id": existing.record_id}
        clash = NewRecord.from_body(body)  # a unique column already taken
        outcomes = await asyncio.gather(
            store.append(new_record(1)),
            store.append(clash),
            store.append(new_record(3)),
            return_exceptions=True,
        )
        assert all(isinstance(o, Exception) for o in outcomes), outcomes
        assert len({type(o) for o in outcomes}) == 1, "one failure, told to every caller"
        assert await checkpoint_sizes(store) == [1], "the group's checkpoints rolled back"
        after = await store.append(new_record(4))
        assert after.seq == 1, "nothing of the failed group was written"
        report = await backend.audit(key.public_key())
        assert report.ok and report.size == 2, report.problem
    finally:
        await store.aclose()


async def test_two_writers_on_one_log_sign_once_per_interval_between_them(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    interval = 0.3
    replicas = [
        await backend.open(fixed_signer(key, every_records=10**6, every_seconds=interval))
        for _ in range(2)
    ]

    async def serve(store: ArchiveStore, until: float) -> None:
        # Each replica appends and runs its checkpoint schedule, as `expound serve` does.
        while asyncio.get_running_loop().time() < until:
            await store.append(new_record(0))
            await store.publish_checkpoint()
            await asyncio.sleep(0.01)

    try:
        until = asyncio.get_running_loop().time() + 5 * interval
        await asyncio.gather(*[serve(store, until) for store in replicas])
        signed = [parse_utc(c.timestamp) for c in (await replicas[0].read_log()).checkpoints]
        gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(signed)]
        assert len(signed) >= 4, "both replicas kept signing"
        assert min(gaps) >= interval, f"signed twice within one interval: {gaps}"
    finally:
        for store in replicas:
            await store.aclose()


async def test_a_replica_with_another_key_signs_nothing_after_the_logs_key(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    first = await backend.open(fixed_signer(key, every_records=100))
    # Opened before the log had a checkpoint, as two replicas starting on an empty log with
    # their own new keys would be: the startup check had nothing to compare.
    stranger = await backend.open(fixed_signer(Ed25519PrivateKey.generate(), every_records=1))
    try:
        await first.append(new_record(0))
        with pytest.raises(ArchiveUnavailable, match="another key"):
            await stranger.append(new_record(1))
        await first.append(new_record(2))  # not yet due for the log's key
        with pytest.raises(ArchiveUnavailable, match="another key"):
            await stranger.publish_checkpoint(force=True)
        assert await checkpoint_sizes(first) == [1]
        report = await backend.audit(key.public_key())
        assert report.ok and report.size == 2, report.problem
    finally:
        await first.aclose()
        await stranger.aclose()
