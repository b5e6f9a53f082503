"""What an archive adapter provides: its tables in a transaction, and the error map.

`expound.archive.engine` writes the log once over these; `expound.archive.sql` (shared by
SQLite and PostgreSQL) and `expound.archive.memory` implement them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from expound.archive.checkpoint import Checkpoint
from expound.archive.log import NodeKey
from expound.archive.records import NewRecord, StoredRecord
from expound.archive.store import AccessEntry, DuplicateIdempotencyKey, LogRow, RecordFilter
from expound.errors import ArchiveUnavailable, RetentionRefused

T = TypeVar("T")

RETENTION_GUARD = "payload is retained or on legal hold"
"""What the databases' delete guard on payloads says; `failure` maps it to RetentionRefused."""


@dataclass(frozen=True)
class Query:
    """Which entries `Tables.select` returns; empty fields do not filter.

    ``listing`` selects records (not events) matching it, newest first; every other
    query returns entries oldest first. ``idempotency_key`` goes with ``principal`` (keys
    are per principal). ``expirable_at`` selects records whose payload is present, not held
    and retained until no later than that time. ``about_seq`` selects the events on that
    entry: its holds, their releases, its tombstone.
    """

    record_id: str = ""
    idempotency_key: str = ""
    principal: str = ""
    about_seq: int | None = None
    listing: RecordFilter | None = None
    below: int | None = None
    expirable_at: str = ""
    limit: int = 0


@dataclass(frozen=True)
class Entry:
    """One leaf to write: the record, where it goes, and the subtrees it completes."""

    seq: int
    record: NewRecord
    root_after: bytes
    nodes: list[tuple[NodeKey, bytes]] = field(default_factory=list)


class Tables(Protocol):
    """A log's tables inside one transaction: what an adapter stores and finds."""

    async def size(self) -> int:
        """Number of entries."""

    async def nodes(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored nodes among ``keys`` (level 0: leaf hashes); missing ones are absent."""

    async def checkpoint(self, size: int | None) -> Checkpoint | None:
        """The checkpoint at ``size`` (None: the latest), if signed."""

    async def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint, by size."""

    async def insert_entry(self, entry: Entry) -> None:
        """Writes the entry, its payload and its nodes."""

    async def insert_entries(self, entries: Sequence[Entry]) -> None:
        """Writes several entries, in order, as `insert_entry` does (a group's, at once)."""

    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Writes a signed checkpoint."""

    async def select(self, query: Query) -> list[StoredRecord]:
        """The entries ``query`` names."""

    async def log_rows(self, start: int, limit: int) -> list[LogRow]:
        """Up to ``limit`` entries from ``seq`` >= ``start``, in order, as an audit reads them."""

    async def active_hold(self, seq: int) -> StoredRecord | None:
        """The hold event on entry ``seq`` that no release names, if any."""

    async def remove_payload(self, seq: int) -> None:
        """Deletes entry ``seq``'s payload (the database refuses while it is retained)."""

    async def insert_access(self, entry: AccessEntry) -> None:
        """Appends one access-log entry (its ``seq`` is assigned by the store)."""

    async def access_rows(self, after: int, limit: int, record_id: str) -> list[AccessEntry]:
        """Up to ``limit`` access-log entries with ``seq`` above ``after``, in order.

        With ``record_id``, only the reads whose answer held that record.
        """


Work = Callable[[Tables], Coroutine[Any, Any, T]]


class Driver(Protocol):
    """One database: runs work in transactions and owns the connections."""

    async def run(
        self, work: Work[T], write: bool, committed: Callable[[T], object] | None = None
    ) -> T:
        """Runs ``work`` in one transaction, committing if it returns.

        Args:
            work: The unit of work.
            write: Whether it writes: it then holds the log's lock, one writer at a time
                across every process that shares the database.
            committed: Called with the result once it is committed, before this process's
                next writer starts where the adapter can tell (so it finds the engine's
                cache fresh).

        Raises:
            DuplicateIdempotencyKey, RetentionRefused, ArchiveUnavailable: the database's
                errors, translated by `failure`.
        """

    async def aclose(self) -> None:
        """Closes the connections."""


def failure(message: str, integrity: bool, write: bool) -> Exception:
    """Our exception for a database error: the translation every adapter shares.

    Args:
        message: The database's message, with any constraint name.
        integrity: Whether the database reported an integrity (constraint) violation.
        write: Whether the failed work was a write transaction.
    """
    if integrity and "idempotency_key" in message:
        return DuplicateIdempotencyKey(message)
    if integrity and RETENTION_GUARD in message:
        return RetentionRefused(f"payload may not be removed: {message}")
    if write:
        return ArchiveUnavailable(f"archive write could not be committed: {message}")
    return ArchiveUnavailable(f"archive read failed: {message}")
