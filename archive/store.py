"""The archive contract: append-only, committed before the answer, queried by id or filter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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


class ArchiveStore(Protocol):
    """An append-only store of explanation records. Never updates or deletes."""

    async def append(self, record: NewRecord) -> StoredRecord:
        """Commits ``record`` durably and returns it with its sequence number.

        Raises:
            DuplicateIdempotencyKey: the key is already taken (the pipeline resolves it
                against the stored record).
            ArchiveUnavailable: the record could not be committed.
        """
        ...

    async def get(self, record_id: str) -> StoredRecord:
        """The record with that id (RecordNotFound otherwise)."""
        ...

    async def find_by_idempotency_key(self, key: str) -> StoredRecord | None:
        """The record appended under ``key``, if any."""
        ...

    async def list(self, where: RecordFilter, page_size: int, page_token: str) -> RecordPage:
        """A page of records matching ``where``, newest first."""
        ...

    async def aclose(self) -> None:
        """Releases the store."""
        ...
