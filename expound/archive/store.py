"""The archive's interface, split by who uses it, and the values it hands out.

Every store is an RFC 6962 Merkle log (`expound.archive.log`) with signed checkpoints
(`expound.archive.signing`): it proves any record's inclusion in, and any two checkpoints'
consistency with, the log it serves. All stores are one engine (`expound.archive.engine`)
over SQLite, PostgreSQL or memory, so they behave alike.

* `RecordLog`: the request path (append, read, prove);
* `RetentionAdmin`: legal holds and expiry, for the retention commands;
* `LogSource`: the audit's read of the whole log.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from expound.archive.checkpoint import Checkpoint
from expound.archive.records import NewRecord, StoredRecord


class DuplicateIdempotencyKey(Exception):
    """Internal: an append lost the race for its idempotency key."""


@dataclass(frozen=True)
class RecordFilter:
    """Which records to list; empty fields do not filter."""

    model_id: str = ""
    decision_id: str = ""
    since: str = ""  # RFC 3339 UTC, inclusive
    until: str = ""  # RFC 3339 UTC, exclusive


@dataclass(frozen=True)
class RecordPage:
    """One page of records, newest first, and the token for the next page ("" at the end)."""

    records: list[StoredRecord]
    next_page_token: str


@dataclass(frozen=True)
class InclusionProof:
    """A record's audit path to a signed checkpoint that covers it."""

    leaf_index: int
    leaf_hash: bytes
    audit_path: list[bytes]
    checkpoint: Checkpoint


@dataclass(frozen=True)
class ConsistencyProof:
    """Proof that the log at ``old`` is a prefix of the log at ``new``.

    ``old`` is None for size 0, the empty log, whose root needs no signature.
    """

    old: Checkpoint | None
    new: Checkpoint
    path: list[bytes]


@dataclass(frozen=True)
class ExpiryReport:
    """What one retention run did: records expired and the tombstones that log it."""

    expired: list[StoredRecord]
    tombstones: list[StoredRecord]


class LogRow(NamedTuple):
    """One log entry as an audit reads it; ``canonical`` is None once expired.

    A tuple, not a dataclass: an audit builds one per entry, and a database row maps onto it
    as it comes.
    """

    seq: int
    leaf_hash: bytes
    root_after: bytes
    canonical: bytes | None
    kind: str


@dataclass(frozen=True)
class LogRead:
    """The whole log for an audit: every checkpoint, by size, and the entries, streamed."""

    checkpoints: list[Checkpoint]
    rows: AsyncGenerator[LogRow, None]


@dataclass(frozen=True)
class LogHead:
    """How far the log has grown: its size and its latest signed checkpoint (for metrics)."""

    size: int
    checkpoint: Checkpoint | None


class RecordLog(Protocol):
    """The request path: append, read and prove. Never updates or deletes."""

    async def append(self, record: NewRecord) -> StoredRecord:
        """Commits ``record`` durably and returns it with its sequence number.

        Raises:
            DuplicateIdempotencyKey: the key is already taken (the pipeline resolves it
                against the stored record).
            ArchiveUnavailable: the record could not be committed.
        """

    async def get(self, record_id: str) -> StoredRecord:
        """The record with that id (RecordNotFound otherwise)."""

    async def find_by_idempotency_key(self, key: str) -> StoredRecord | None:
        """The record appended under ``key``, if any."""

    async def list(self, where: RecordFilter, page_size: int, page_token: str) -> RecordPage:
        """A page of records matching ``where``, newest first."""

    async def checkpoint(self, size: int = 0) -> Checkpoint | None:
        """The signed checkpoint at ``size``, or for 0 the latest, signed now if stale.

        Returns None only for an empty log. Raises InvalidRequest when no checkpoint was
        signed at a non-zero ``size``.
        """

    async def head(self) -> LogHead:
        """The log's size and latest checkpoint, read only (never signs one)."""

    async def prove_inclusion(self, record: StoredRecord) -> InclusionProof:
        """``record``'s audit path to the latest checkpoint (signed now if none covers it)."""

    async def prove_consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        """Consistency between the checkpoints at both sizes (``new_size`` 0: the latest).

        Raises InvalidRequest when a size has no signed checkpoint or ``old_size`` is the
        larger.
        """

    async def aclose(self) -> None:
        """Releases the store."""


class RetentionAdmin(Protocol):
    """Retention administration: legal holds and expiry."""

    async def set_legal_hold(self, record_id: str, held: bool, reason: str) -> StoredRecord:
        """Places or releases a legal hold on a record; returns it as now stored.

        Raises:
            RetentionRefused: A hold is placed on a record already held (the first hold and
                its reason stand; release it first to change them).
        """

    async def expire(self, record_ids: Sequence[str] | None = None) -> ExpiryReport:
        """Removes the payloads now past retain-until and not held, appending a tombstone each.

        With ``record_ids``, only those; one that may not expire yet raises
        RetentionRefused and nothing changes.
        """


class LogSource(Protocol):
    """What an audit reads."""

    async def read_log(self) -> LogRead:
        """Every checkpoint and, streamed in ``seq`` order, every entry."""


class ArchiveStore(RecordLog, RetentionAdmin, LogSource, Protocol):
    """Everything a store offers; each user needs only one of its parts."""
