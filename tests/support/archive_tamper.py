"""The databases' guards, and tampering past them: the audit names the first bad seq.

Written once; tests/unit runs it over SQLite, tests/integration over PostgreSQL. Each
tampering test writes a real log through the store, then edits the database the way someone
with owner rights could (dropping the append-only triggers first), then audits it: rows
deleted, reordered or replaced, payloads flipped or removed, roots rewritten, checkpoints
forged, every column beside a payload forged (the issue's cases: a decision served by
ListRecords, retain_until set to 2000-01-01 with the triggers recreated, which expiry
refuses), a hold deleted, an expired row altered.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive.checkpoint import Checkpoint
from expound.archive.merkle import leaf_hash
from expound.archive.records import KIND_HOLD, canonical_json
from expound.archive.retention import RetentionPolicy
from expound.archive.store import AccessEntry, RecordFilter
from expound.errors import ArchiveUnavailable, RetentionRefused
from expound.times import utc_now
from tests.support.archive_backends import Backend, fixed_signer
from tests.support.archive_contract import fill, new_record
from tests.support.merkle_reference import MerkleTree

SIZE = 12


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
async def written(backend: Backend, key: Ed25519PrivateKey) -> Backend:
    """A log of SIZE records with checkpoints at 1, 5, 9 and 12, triggers then dropped."""
    store = await backend.open(fixed_signer(key, every_records=4))
    try:
        await fill(store, SIZE)
        assert await store.publish_checkpoint(force=True) is not None
    finally:
        await store.aclose()
    report = await backend.audit(key.public_key())
    assert report.ok and report.size == SIZE, report.problem
    backend.drop_guards()
    return backend


def payload(backend: Backend, seq: int) -> bytes:
    return bytes(backend.sql("SELECT canonical FROM payloads WHERE seq = ?", (seq,))[0][0])


def forged_payload(backend: Backend, seq: int) -> bytes:
    """Entry ``seq``'s payload with a field changed that no column holds: the columns match."""
    body = json.loads(payload(backend, seq))
    body["n"] = 1000 + seq
    return canonical_json(body)


async def test_a_flipped_byte_names_its_record(written: Backend, key: Ed25519PrivateKey) -> None:
    body = bytearray(payload(written, 5))
    body[len(body) // 2] ^= 0x01
    written.sql("UPDATE payloads SET canonical = ? WHERE seq = ?", (bytes(body), 5))
    report = await written.audit(key.public_key())
    assert (report.first_bad_seq, report.problem) == (
        5,
        "entry 5's payload does not hash to its leaf",
    )


async def test_a_deleted_row_is_named(written: Backend, key: Ed25519PrivateKey) -> None:
    written.sql("DELETE FROM payloads WHERE seq = 7")
    written.sql("DELETE FROM records WHERE seq = 7")
    report = await written.audit(key.public_key())
    assert report.first_bad_seq == 7
    assert "entry 7 is missing" in report.problem


async def test_two_reordered_rows_are_found_at_the_first(
    written: Backend, key: Ed25519PrivateKey
) -> None:
    for table in ("records", "payloads"):
        written.sql(f"UPDATE {table} SET seq = 1000000 WHERE seq = 3")
        written.sql(f"UPDATE {table} SET seq = 3 WHERE seq = 8")
        written.sql(f"UPDATE {table} SET seq = 8 WHERE seq = 1000000")
    report = await written.audit(key.public_key())
    assert report.first_bad_seq == 3
    assert "root after entry 3" in report.problem


async def test_a_truncated_tail_is_named_by_the_checkpoints(
    written: Backend, key: Ed25519PrivateKey
) -> None:
    written.sql("DELETE FROM payloads WHERE seq >= 10")
    written.sql("DELETE FROM records WHERE seq >= 10")
    report = await written.audit(key.public_key())
    assert report.first_bad_seq == 10
    assert "log ends at 10" in report.problem


async def test_a_truncation_that_also_drops_checkpoints_needs_a_checkpoint_kept_outside(
    written: Backend, key: Ed25519PrivateKey
) -> None:
    row = written.sql(
        "SELECT log_id, size, root_hash, timestamp, signature, key_id FROM checkpoints "
        "WHERE size = 12"
    )[0]
    published = Checkpoint(row[0], int(row[1]), bytes(row[2]), row[3], bytes(row[4]), bytes(row[5]))
    for table in ("payloads", "records"):
        written.sql(f"DELETE FROM {table} WHERE seq >= 9")
    written.sql("DELETE FROM checkpoints WHERE size > 9")
    assert (await written.audit(key.public_key())).ok, "the database alone cannot tell"
    report = await written.audit(key.public_key(), published=[published])
    assert report.first_bad_seq == 9
    assert "log ends at 9" in report.problem


async def test_a_replaced_record_with_a_matching_leaf_is_named(
    written: Backend, key: Ed25519PrivateKey
) -> None:
    forged = forged_payload(written, 4)
    written.sql("UPDATE payloads SET canonical = ? WHERE seq = 4", (forged,))
    written.sql(
        "UPDATE records SET leaf_hash = ?, sha256 = ? WHERE seq = 4",
        (leaf_hash(forged), hashlib.sha256(forged).hexdigest()),
    )
    report = await written.audit(key.public_key())
    assert report.first_bad_seq == 4
    assert "root after entry 4" in report.problem


async def test_rewriting_every_stored_root_too_is_caught_by_the_signed_checkpoints(
    written: Backend, key: Ed25519PrivateKey
) -> None:
    forged = forged_payload(written, 6)
    written.sql("UPDATE payloads SET canonical = ? WHERE seq = 6", (forged,))
    written.sql(
        "UPDATE records SET leaf_hash = ?, sha256 = ? WHERE seq = 6",
        (leaf_hash(forged), hashlib.sha256(forged).hexdigest()),
    )
    leaves = written.sql("SELECT seq, leaf_hash FROM records ORDER BY seq")
    tree = MerkleTree([bytes(leaf) for _, leaf in leaves])
    for seq, _ in leaves:
        written.sql("UPDATE records SET root_after = ? WHERE seq = ?", (tree.root(seq + 1), seq))
    report = await written.audit(key.public_key())
    # The last checkpoint that still verifies covers 0..4; the change lies in 5..8.
    assert report.first_bad_seq == 5
    assert "from 5 to 8 was changed" in report.problem


async def test_a_forged_checkpoint_fails_the_signature_check(
    written: Backend, key: Ed25519PrivateKey
) -> None:
    written.sql("UPDATE checkpoints SET timestamp = '2020-01-01T00:00:00.000000Z' WHERE size = 5")
    report = await written.audit(key.public_key())
    assert not report.ok and "bad signature" in report.problem
    assert "altered" in report.problem
    assert (await written.audit()).ok, "without the key only the hashes are checked"


async def test_another_archives_key_is_named_as_such(written: Backend) -> None:
    # The audit said "bad signature" alone, as for a forged checkpoint.
    report = await written.audit(Ed25519PrivateKey.generate().public_key())
    assert not report.ok and report.first_bad_seq == 0
    assert "another archive's key" in report.problem


# -- columns beside the payload: every one is checked against it -----------------------------


async def test_a_forged_retain_until_is_refused_by_expiry_and_named_by_the_audit(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    """The issue's case: trigger dropped and recreated, retain_until set to 2000-01-01."""
    store = await backend.open(fixed_signer(key, every_records=4))
    try:
        records = await fill(store, 6)
        target = records[3]
        backend.drop_guards()
        backend.sql(
            "UPDATE records SET retain_until = '2000-01-01T00:00:00.000000Z' WHERE seq = ?",
            (target.seq,),
        )
        backend.restore_guards()
        for named in ([target.record_id], None):
            with pytest.raises(RetentionRefused, match=r"retain_until column disagrees"):
                await store.expire("clerk", named)
        kept = await store.get(target.record_id)
        assert not kept.expired and kept.canonical == target.canonical
    finally:
        await store.aclose()
    report = await backend.audit(key.public_key())
    assert (report.first_bad_seq, report.problem) == (
        3,
        "entry 3's retain_until column differs from its payload",
    )


async def test_a_forged_decision_column_is_named(backend: Backend, key: Ed25519PrivateKey) -> None:
    store = await backend.open(fixed_signer(key, every_records=4))
    try:
        await fill(store, 6)
        backend.drop_guards()
        backend.sql("UPDATE records SET decision = 'approve' WHERE seq = 2")
        page = await store.list(RecordFilter(decision_id="d-2"), 1, "")
        assert page.records[0].decision == "approve", "the listing serves the column"
    finally:
        await store.aclose()
    report = await backend.audit(key.public_key())
    assert (report.first_bad_seq, report.problem) == (
        2,
        "entry 2's decision column differs from its payload",
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("record_id", "someone-else"),
        ("model_id", "another-model"),
        ("decision_id", "d-99"),
        ("principal", "mallory"),
        ("idempotency_key", "stolen"),
        ("created_at", "2001-01-01T00:00:00.000000Z"),
        ("request_sha256", "f" * 64),
        ("sha256", "0" * 64),
        ("kind", "tombstone"),
    ],
)
async def test_every_forged_column_is_named(
    written: Backend, key: Ed25519PrivateKey, column: str, value: str
) -> None:
    written.sql(f"UPDATE records SET {column} = ? WHERE seq = 7", (value,))
    report = await written.audit(key.public_key())
    assert (report.first_bad_seq, report.problem) == (
        7,
        f"entry 7's {column} column differs from its payload",
    )


async def test_a_deleted_hold_is_named(backend: Backend, key: Ed25519PrivateKey) -> None:
    store = await backend.open(fixed_signer(key, every_records=1))
    try:
        records = await fill(store, 3)
        await store.place_hold(records[0].record_id, "counsel", "litigation 42")
        await store.release_hold(records[0].record_id, "counsel", "settled")
        hold = await store.place_hold(records[1].record_id, "counsel", "litigation 43")
        await fill(store, 2)
    finally:
        await store.aclose()
    assert (await backend.audit(key.public_key())).ok
    backend.drop_guards()
    backend.sql("DELETE FROM payloads WHERE seq = ?", (hold.seq,))
    backend.sql("DELETE FROM records WHERE seq = ? AND kind = ?", (hold.seq, KIND_HOLD))
    report = await backend.audit(key.public_key())
    assert report.first_bad_seq == hold.seq == 5
    assert report.problem == "entry 5 is missing (found 6 in its place)"


async def test_a_row_altered_after_its_payload_expired_is_named_by_its_tombstone(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(
        fixed_signer(key, every_records=1), RetentionPolicy(default_months=0)
    )
    try:
        records = await fill(store, 3)
        await store.expire("clerk", [records[1].record_id])
    finally:
        await store.aclose()
    assert (await backend.audit(key.public_key())).ok
    backend.drop_guards()
    backend.sql("UPDATE records SET decision = 'approve' WHERE seq = 1")
    report = await backend.audit(key.public_key())
    assert (report.first_bad_seq, report.problem) == (
        1,
        "entry 1's row differs from what its tombstone (entry 3) recorded",
    )


async def test_a_payload_deleted_past_the_guards_is_named(
    written: Backend, key: Ed25519PrivateKey
) -> None:
    written.sql("DELETE FROM payloads WHERE seq = 8")
    report = await written.audit(key.public_key())
    assert (report.first_bad_seq, report.problem) == (
        8,
        "entry 8's payload is missing and no tombstone records it",
    )


async def test_the_database_refuses_updates_and_deletes(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(fixed_signer(key, every_records=1))
    try:
        await fill(store, 2)
        await store.log_access(AccessEntry(utc_now(), "auditor", "GetRecord", "req-1", ("r",)))
    finally:
        await store.aclose()
    for statement in (
        "UPDATE records SET decision = 'approve'",
        "UPDATE records SET retain_until = '2000-01-01T00:00:00.000000Z'",
        "DELETE FROM records WHERE seq = 1",
        "UPDATE payloads SET canonical = canonical",
        "DELETE FROM payloads",
        "DELETE FROM nodes",
        "UPDATE checkpoints SET size = 9",
        "DELETE FROM checkpoints",
        "UPDATE access_log SET principal = 'nobody'",
        "DELETE FROM access_log",
        "UPDATE access_records SET record_id = 'other'",
        "DELETE FROM access_records",
    ):
        with pytest.raises(Exception, match=r"append-only|retained"):
            backend.sql(statement)
    assert len(backend.sql("SELECT * FROM payloads")) == 2


async def test_a_store_that_cannot_commit_says_so(backend: Backend, key: Ed25519PrivateKey) -> None:
    store = await backend.open(fixed_signer(key))
    try:
        await fill(store, 1)
        if backend.kind == "sqlite":
            backend.sql(
                "CREATE TRIGGER full BEFORE INSERT ON payloads "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
        else:
            backend.sql("ALTER TABLE payloads ADD CONSTRAINT disk_full CHECK (seq < 1) NOT VALID")
        with pytest.raises(ArchiveUnavailable):
            await store.append(new_record(1))
        report = await backend.audit(key.public_key())
        assert report.ok and report.size == 1, "a failed append leaves nothing behind"
    finally:
        await store.aclose()
