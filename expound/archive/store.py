"""The archive's interface, split by who uses it, and the values it hands out.

Every store is an RFC 6962 Merkle log (`expound.archive.log`) with signed checkpoints
(`expound.archive.signing`): it proves any record's inclusion in, and any two checkpoints'
consistency with, the log it serves. All stores are one engine (`expound.archive.engine`)
over SQLite, PostgreSQL or memory, so they behave alike.

* `RecordLog`: the request path (append, read, prove);
* `RetentionAdmin`: legal holds, releases and expiry, each a signed log event;
* `AccessLog`: who read which records (append-only, beside the log);
* `LogSource`: the audit's read of the whole log.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from expound.archive.checkpoint import Checkpoint
from expound.archive.records import Columns, NewRecord, StoredRecord


class DuplicateIdempotencyKey(Exception):
    """Internal: an append lost the race for its idempotency key."""


@dataclass(frozen=True)
class RecordFilter:
    """Which records to list; empty fields do not filter."""

    model_id: str = ""
    decision_id: str = ""
    principal: str = ""  # whose records (an analyst sees their own)
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
    as it comes. ``columns`` are the row's stored columns in `records.columns_of` order.
    """

    seq: int
    leaf_hash: bytes
    root_after: bytes
    canonical: bytes | None
    columns: Columns


@dataclass(frozen=True)
class AccessEntry:
    """One read of archived records: who, which, when, through which call.

    Attributes:
        at: When, RFC 3339 UTC.
        principal: The caller.
        rpc: The method, e.g. ``GetRecord``.
        request_id: The call's request id.
        record_ids: The records the answer held (none for an empty page).
        seq: Its position in the access log, set by the store (0 before).
    """

    at: str
    principal: str
    rpc: str
    request_id: str
    record_ids: tuple[str, ...]
    seq: int = 0

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (one line of the access-log export)."""
        return {
            "seq": self.seq,
            "at": self.at,
            "principal": self.principal,
            "rpc": self.rpc,
            "request_id": self.request_id,
            "record_ids": list(self.record_ids),
        }


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

    def retain_until(self, model_id: str, created_at: str) -> str:
        """The retain-until time `append` will give such a record (build it in)."""
        ...

    async def get(self, record_id: str) -> StoredRecord:
        """The record with that id (RecordNotFound otherwise)."""

    async def find_by_idempotency_key(self, principal: str, key: str) -> StoredRecord | None:
        """The record ``principal`` appended under ``key``, if any (keys are per principal)."""

    async def list(self, where: RecordFilter, page_size: int, page_token: str) -> RecordPage:
        """A page of records matching ``where``, newest first."""

    async def checkpoint(self, size: int = 0) -> Checkpoint | None:
        """The signed checkpoint at ``size``, or for 0 the latest. Never signs (a read).

        Returns None when none was signed yet. Raises InvalidRequest when no checkpoint was
        signed at a non-zero ``size``.
        """

    async def head(self) -> LogHead:
        """The log's size and latest checkpoint, read only (never signs one)."""

    async def prove_inclusion(self, record: StoredRecord) -> InclusionProof:
        """``record``'s audit path to the latest checkpoint.

        Raises ArchiveUnavailable while no signed checkpoint covers it yet.
        """

    async def prove_consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        """Consistency between the checkpoints at both sizes (``new_size`` 0: the latest).

        Raises InvalidRequest when a size has no signed checkpoint or ``old_size`` is the
        larger.
        """

    async def aclose(self) -> None:
        """Releases the store."""


class RetentionAdmin(Protocol):
    """Retention administration: every act is a log event naming its actor and reason."""

    async def place_hold(self, record_id: str, actor: str, reason: str) -> StoredRecord:
        """Appends a legal hold on a record; returns the hold event.

        Raises:
            RetentionRefused: The record is already held (the first hold and its reason
                stand, named in the message; release it first), expired, or an event.
        """

    async def release_hold(self, record_id: str, actor: str, reason: str) -> StoredRecord:
        """Appends the release of the record's hold (naming that hold); returns the event.

        Raises:
            RetentionRefused: The record is not held.
        """

    async def expire(
        self, actor: str, record_ids: Sequence[str] | None = None, reason: str = ""
    ) -> ExpiryReport:
        """Removes the payloads now past retain-until and not held, appending a tombstone each.

        With ``record_ids``, only those; one that may not expire yet, or whose columns
        disagree with its payload, raises RetentionRefused and nothing changes.
        """

    async def history(self, record_id: str) -> list[StoredRecord]:
        """The events on a record, oldest first."""

    async def publish_checkpoint(self, force: bool = False) -> Checkpoint | None:
        """Signs a checkpoint when one is due (the writer's schedule); None if none was."""


class AccessLog(Protocol):
    """Who read which records: append-only, in the archive database."""

    async def log_access(self, entry: AccessEntry) -> None:
        """Appends one read."""

    async def read_access_log(
        self, after: int = 0, limit: int = 1000, record_id: str = ""
    ) -> list[AccessEntry]:
        """Entries with ``seq`` above ``after``, oldest first (only those that read
        ``record_id``, when given)."""


class LogSource(Protocol):
    """What an audit reads."""

    async def read_log(self) -> LogRead:
        """Every checkpoint and, streamed in ``seq`` order, every entry."""


class ArchiveStore(RecordLog, RetentionAdmin, AccessLog, LogSource, Protocol):
    """Everything a store offers; each user needs only one of its parts."""
