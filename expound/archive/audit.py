"""Recomputes an archive's whole Merkle log from its rows and names the first bad entry.

What each check catches, and the sequence number it names:

* ``seq`` must run 0, 1, 2, ... without gaps: a deleted, reordered or renumbered row shows
  as the first missing number;
* each payload must hash to its stored leaf: a flipped byte names its row;
* each row's stored ``root_after`` must be the root recomputed over the leaves so far: a
  record replaced together with its leaf hash, or two rows swapped, names the first row
  where the recomputed log departs from the one that was written;
* every signed checkpoint must verify under the public key and match the recomputed root at
  its size: this catches even a rewrite of every stored root, naming the first entry the
  last good checkpoint does not cover; a checkpoint larger than the log names the first
  missing entry of a truncated tail;
* every column stored beside a payload (kind, ids, principal, idempotency key, times,
  decision, retain-until, the event's target, sha256) must be what the payload says: a
  forged ``decision`` or ``retain_until`` names its row;
* an event (hold, release, tombstone) must name an earlier entry;
* a payload may be missing only once a tombstone leaf names it, with the expired row's
  leaf hash and columns as they were: a row altered after its payload expired is named.

Holds and releases are entries of the log, so deleting one shows as a missing entry.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from expound.archive.checkpoint import Checkpoint, signature_problem, verify_checkpoint
from expound.archive.log import fold_root, plan_append
from expound.archive.merkle import leaf_hash
from expound.archive.records import (
    INDEXED,
    KIND_RECORD,
    KIND_TOMBSTONE,
    Columns,
    column_mismatch,
    columns_of,
)
from expound.archive.store import LogRead, LogRow


@dataclass(frozen=True)
class AuditReport:
    """The outcome of an audit.

    Attributes:
        size: Entries read.
        checkpoints: Checkpoints checked against the recomputed log.
        first_bad_seq: The first entry that fails, or None when the log verifies.
        problem: What failed there ("" when the log verifies).
        root: The recomputed root over every entry read.
    """

    size: int
    checkpoints: int
    first_bad_seq: int | None
    problem: str
    root: bytes

    @property
    def ok(self) -> bool:
        """Whether the whole log verified."""
        return self.first_bad_seq is None


_TARGET = INDEXED.index("target_seq")


def _body(canonical: bytes) -> dict[str, object] | None:
    try:
        body = json.loads(canonical)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class LogAuditor:
    """Checks a log one entry at a time, so a caller can stream rows of any number."""

    def __init__(
        self, checkpoints: Sequence[Checkpoint], public_key: Ed25519PublicKey | None = None
    ) -> None:
        """Prepares to check entries against ``checkpoints``.

        Args:
            checkpoints: Every stored checkpoint.
            public_key: The log's key; when given, every checkpoint's signature is checked.
        """
        self._pending = sorted(checkpoints, key=lambda c: c.size)
        self._count = len(checkpoints)
        self._size = 0
        self._frontier: list[bytes] = []
        self._root = fold_root([])
        self._position = 0
        self._verified_size = 0
        # Expired entries not yet named by a tombstone: their leaf hash and stored columns.
        self._missing_payloads: dict[int, tuple[bytes, Columns]] = {}
        self._failure: AuditReport | None = None
        for checkpoint in self._pending:
            if public_key is not None and not verify_checkpoint(public_key, checkpoint):
                # A forged checkpoint vouches for nothing: every entry is unverified.
                problem = signature_problem(public_key, checkpoint)
                self._fail(
                    0, f"checkpoint at size {checkpoint.size} has a bad signature: {problem}"
                )
                break

    def _fail(self, seq: int, problem: str) -> AuditReport:
        self._failure = AuditReport(self._size, self._count, seq, problem, self._root)
        return self._failure

    def check(self, row: LogRow) -> AuditReport | None:
        """Checks the next entry; returns the failure report once one is found."""
        if self._failure is not None:
            return self._failure
        seq = self._size
        if row.seq != seq:
            return self._fail(seq, f"entry {seq} is missing (found {row.seq} in its place)")
        if row.canonical is None:
            self._missing_payloads[seq] = (row.leaf_hash, row.columns)
        else:
            problem = self._check_payload(seq, row)
            if problem is not None:
                return problem
        step = plan_append(seq, self._frontier, row.leaf_hash)
        self._size, self._frontier, self._root = seq + 1, step.frontier, step.root
        root = step.root
        if not hmac.compare_digest(root, row.root_after):
            return self._fail(seq, f"the log root after entry {seq} differs from the one written")
        pending = self._pending
        while self._position < len(pending) and pending[self._position].size == self._size:
            if not hmac.compare_digest(pending[self._position].root_hash, root):
                return self._fail(
                    self._verified_size,
                    f"checkpoint at size {self._size} does not match the log: an entry "
                    f"from {self._verified_size} to {seq} was changed",
                )
            self._verified_size = self._size
            self._position += 1
        return None

    def _check_payload(self, seq: int, row: LogRow) -> AuditReport | None:
        canonical = row.canonical
        assert canonical is not None
        if not hmac.compare_digest(leaf_hash(canonical), row.leaf_hash):
            return self._fail(seq, f"entry {seq}'s payload does not hash to its leaf")
        body = _body(canonical)
        if body is None:
            return self._fail(seq, f"entry {seq}'s payload is not a JSON object")
        altered = column_mismatch(row.columns, columns_of(body, canonical))
        if altered:
            return self._fail(seq, f"entry {seq}'s {altered} column differs from its payload")
        target = row.columns[_TARGET]
        kind = row.columns[0]
        if kind != KIND_RECORD and not (isinstance(target, int) and 0 <= target < seq):
            return self._fail(seq, f"entry {seq} is a {kind} that names no earlier entry")
        if kind == KIND_TOMBSTONE:
            assert isinstance(target, int)
            return self._check_tombstone(seq, target, body)
        return None

    def _check_tombstone(
        self, seq: int, target: int, body: dict[str, object]
    ) -> AuditReport | None:
        expired = self._missing_payloads.pop(target, None)
        if expired is None:
            return None  # its payload is still there (checked as any other)
        leaf, columns = expired
        named = body.get("expired_columns")
        named_columns = tuple(named) if isinstance(named, list) else ()
        if body.get("expired_leaf_hash") != leaf.hex() or named_columns != columns:
            return self._fail(
                target,
                f"entry {target}'s row differs from what its tombstone (entry {seq}) recorded",
            )
        return None

    def finish(self) -> AuditReport:
        """The report after the last entry."""
        if self._failure is not None:
            return self._failure
        if self._missing_payloads:
            seq = min(self._missing_payloads)
            return self._fail(seq, f"entry {seq}'s payload is missing and no tombstone records it")
        size = self._size
        if self._position < len(self._pending):
            return self._fail(
                size,
                f"checkpoint at size {self._pending[self._position].size} was signed but the "
                f"log ends at {size}: entries from {size} on are missing",
            )
        return AuditReport(size, self._count, None, "", self._root)


async def audit(log: LogRead, public_key: Ed25519PublicKey | None = None) -> AuditReport:
    """Recomputes the log from its rows and checks it against itself and its checkpoints.

    Args:
        log: What a store's ``read_log`` returns; extra checkpoints kept outside the
            database may be added to ``log.checkpoints``. The row stream is closed here.
        public_key: The log's key; when given, every checkpoint's signature is checked.

    Returns:
        The report; ``first_bad_seq`` names the first failing entry.
    """
    auditor = LogAuditor(log.checkpoints, public_key)
    async with contextlib.aclosing(log.rows) as rows:
        async for row in rows:
            if auditor.check(row) is not None:
                break
    return auditor.finish()
