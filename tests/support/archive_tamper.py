"""The databases' guards, and tampering past them: the audit names the first bad seq.

Written once; tests/unit runs it over SQLite, tests/integration over PostgreSQL. Each
tampering test writes a real log through the store, then edits the database the way someone
with owner rights could (dropping the append-only triggers first), then audits it.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive.checkpoint import Checkpoint
from expound.archive.merkle import leaf_hash
from expound.archive.records import canonical_json
from expound.errors import ArchiveUnavailable
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
        assert await store.checkpoint() is not None
    finally:
        await store.aclose()
    report = await backend.audit(key.public_key())
    assert report.ok and report.size == SIZE, report.problem
    backend.drop_guards()
    return backend


def payload(backend: Backend, seq: int) -> bytes:
    return bytes(backend.sql("SELECT canonical FROM payloads WHERE seq = ?", (seq,))[0][0])


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
        "SELECT log_id, size, root_hash, timestamp, signature FROM checkpoints WHERE size = 12"
    )[0]
    published = Checkpoint(row[0], int(row[1]), bytes(row[2]), row[3], bytes(row[4]))
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
    forged = canonical_json({"schema": "test", "n": 4, "decision": "approve"})
    written.sql("UPDATE payloads SET canonical = ? WHERE seq = 4", (forged,))
    written.sql("UPDATE records SET leaf_hash = ? WHERE seq = 4", (leaf_hash(forged),))
    report = await written.audit(key.public_key())
    assert report.first_bad_seq == 4
    assert "root after entry 4" in report.problem


async def test_rewriting_every_stored_root_too_is_caught_by_the_signed_checkpoints(
    written: Backend, key: Ed25519PrivateKey
) -> None:
    forged = canonical_json({"schema": "test", "n": 6, "decision": "approve"})
    written.sql("UPDATE payloads SET canonical = ? WHERE seq = 6", (forged,))
    written.sql("UPDATE records SET leaf_hash = ? WHERE seq = 6", (leaf_hash(forged),))
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
    assert (await written.audit()).ok, "without the key only the hashes are checked"


async def test_the_database_refuses_updates_and_deletes(
    backend: Backend, key: Ed25519PrivateKey
) -> None:
    store = await backend.open(fixed_signer(key, every_records=1))
    try:
        await fill(store, 2)
    finally:
        await store.aclose()
    for statement in (
        "UPDATE records SET decision = 'approve'",
        "DELETE FROM records WHERE seq = 1",
        "UPDATE payloads SET canonical = canonical",
        "DELETE FROM payloads",
        "DELETE FROM nodes",
        "UPDATE checkpoints SET size = 9",
        "DELETE FROM checkpoints",
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
