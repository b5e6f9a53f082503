"""The archive in memory: the same engine over dicts, the fake for tests.

It behaves as the databases do, guards included: an idempotency key is taken once, a
payload cannot be removed while retained or held, and a failed unit of work leaves nothing
behind (each write is undone in reverse).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from expound.archive.adapter import RETENTION_GUARD, Entry, Query, Work
from expound.archive.checkpoint import Checkpoint
from expound.archive.engine import LogArchive, open_log, stored_entry
from expound.archive.grouping import DEFAULT_MAX_GROUP
from expound.archive.log import NodeKey
from expound.archive.records import KIND_HOLD, KIND_RECORD, KIND_RELEASE, StoredRecord
from expound.archive.retention import RetentionPolicy
from expound.archive.signing import CheckpointPolicy
from expound.archive.store import AccessEntry, DuplicateIdempotencyKey, LogRow
from expound.errors import RetentionRefused
from expound.times import utc_now

T = TypeVar("T")


@dataclass
class _Log:
    entries: list[tuple[StoredRecord, bytes]] = field(default_factory=list)  # and root_after
    payloads: dict[int, bytes] = field(default_factory=dict)
    nodes: dict[NodeKey, bytes] = field(default_factory=dict)
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    holds: dict[int, int] = field(default_factory=dict)  # held seq -> its hold's seq
    events: dict[int, list[int]] = field(default_factory=dict)  # seq -> events on it
    keys: dict[tuple[str, str], int] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    access: list[AccessEntry] = field(default_factory=list)


class _Tables:
    """`expound.archive.engine.Tables` over a `_Log`, recording how to undo each write."""

    def __init__(self, log: _Log) -> None:
        self._log = log
        self.undo: list[Callable[[], object]] = []

    async def size(self) -> int:
        return len(self._log.entries)

    async def nodes(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        entries, nodes = self._log.entries, self._log.nodes
        found = {}
        for level, index in keys:
            if level == 0 and index < len(entries):
                found[(level, index)] = entries[index][0].leaf_hash
            elif (level, index) in nodes:
                found[(level, index)] = nodes[(level, index)]
        return found

    async def checkpoint(self, size: int | None) -> Checkpoint | None:
        checkpoints = self._log.checkpoints
        if size is None:
            return checkpoints[max(checkpoints)] if checkpoints else None
        return checkpoints.get(size)

    async def checkpoints(self) -> list[Checkpoint]:
        return [self._log.checkpoints[size] for size in sorted(self._log.checkpoints)]

    async def insert_entries(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            await self.insert_entry(entry)

    async def insert_entry(self, entry: Entry) -> None:
        log, record = self._log, entry.record
        key = (record.principal, record.idempotency_key)
        if record.idempotency_key and key in log.keys:
            raise DuplicateIdempotencyKey(record.idempotency_key)
        if record.record_id in log.ids or entry.seq != len(log.entries):
            raise ValueError(f"entry {entry.seq} ({record.record_id}) is already taken")
        stored = stored_entry(record, entry.seq)
        log.entries.append((stored, entry.root_after))
        log.payloads[entry.seq] = record.canonical
        log.ids[record.record_id] = entry.seq
        if record.idempotency_key:
            log.keys[key] = entry.seq
        log.nodes.update(entry.nodes)
        undo_holds = self._index_event(stored)

        def undo() -> None:
            undo_holds()
            log.entries.pop()
            log.payloads.pop(entry.seq)
            log.ids.pop(record.record_id)
            log.keys.pop(key, None)
            for node, _ in entry.nodes:
                log.nodes.pop(node)

        self.undo.append(undo)

    def _index_event(self, event: StoredRecord) -> Callable[[], object]:
        """Indexes a hold, release or tombstone as the databases' queries find them."""
        log, target = self._log, event.target_seq
        if target is None:
            return lambda: None
        about = log.entries[target][0].target_seq if event.kind == KIND_RELEASE else target
        assert about is not None
        log.events.setdefault(about, []).append(event.seq)
        if event.kind == KIND_HOLD:
            log.holds[target] = event.seq
        released = []
        if event.kind == KIND_RELEASE:
            released = [held for held, hold in log.holds.items() if hold == target]
            for held in released:
                log.holds.pop(held)

        def undo() -> None:
            log.events[about].pop()
            if event.kind == KIND_HOLD:
                log.holds.pop(target)
            if event.kind == KIND_RELEASE:
                log.holds.update(dict.fromkeys(released, target))

        return undo

    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        if checkpoint.size in self._log.checkpoints:
            raise ValueError(f"a checkpoint at size {checkpoint.size} is already signed")
        self._log.checkpoints[checkpoint.size] = checkpoint
        self.undo.append(lambda: self._log.checkpoints.pop(checkpoint.size))

    def _stored(self, seq: int) -> StoredRecord:
        record = self._log.entries[seq][0]
        payload = self._log.payloads.get(seq)
        return replace(
            record,
            canonical=payload or b"",
            legal_hold=seq in self._log.holds,
            expired=payload is None,
        )

    def _matches(self, record: StoredRecord, query: Query) -> bool:
        listing = query.listing
        checks = [
            not query.record_id or record.record_id == query.record_id,
            not query.idempotency_key
            or (record.principal, record.idempotency_key)
            == (query.principal, query.idempotency_key),
            query.below is None or record.seq < query.below,
        ]
        if listing is not None:
            checks += [
                record.kind == KIND_RECORD,
                not listing.model_id or record.model_id == listing.model_id,
                not listing.decision_id or record.decision_id == listing.decision_id,
                not listing.principal or record.principal == listing.principal,
                not listing.since or record.created_at >= listing.since,
                not listing.until or record.created_at < listing.until,
            ]
        if query.expirable_at:
            checks += [
                record.kind == KIND_RECORD,
                record.retain_until <= query.expirable_at,
                not record.expired and not record.legal_hold,
            ]
        return all(checks)

    async def select(self, query: Query) -> list[StoredRecord]:
        log = self._log
        if query.about_seq is not None:
            candidates = list(log.events.get(query.about_seq, []))
        elif query.record_id or query.idempotency_key:
            seq = log.ids.get(query.record_id) if query.record_id else None
            if seq is None:
                seq = log.keys.get((query.principal, query.idempotency_key))
            candidates = [] if seq is None else [seq]
        else:
            candidates = list(range(len(log.entries)))
        if query.listing is not None:
            candidates.reverse()
        found = [r for r in map(self._stored, candidates) if self._matches(r, query)]
        return found[: query.limit] if query.limit else found

    async def log_rows(self, start: int, limit: int) -> list[LogRow]:
        return [
            LogRow(seq, record.leaf_hash, root, self._log.payloads.get(seq), record.columns())
            for seq, (record, root) in enumerate(
                self._log.entries[start : start + limit], start=start
            )
        ]

    async def active_hold(self, seq: int) -> StoredRecord | None:
        hold = self._log.holds.get(seq)
        return None if hold is None else self._stored(hold)

    async def remove_payload(self, seq: int) -> None:
        # The databases' delete guard on payloads, as a trigger would apply it.
        record = self._log.entries[seq][0]
        retained = record.kind != KIND_RECORD or record.retain_until > utc_now()
        if retained or seq in self._log.holds:
            raise RetentionRefused(f"payload may not be removed: {RETENTION_GUARD}")
        payload = self._log.payloads.pop(seq)
        self.undo.append(lambda: self._log.payloads.__setitem__(seq, payload))

    async def insert_access(self, entry: AccessEntry) -> None:
        access = self._log.access
        access.append(replace(entry, seq=len(access) + 1))
        self.undo.append(access.pop)

    async def access_rows(self, after: int, limit: int, record_id: str) -> list[AccessEntry]:
        found = [
            entry
            for entry in self._log.access[max(after, 0) :]
            if not record_id or record_id in entry.record_ids
        ]
        return found[:limit]


class MemoryDriver:
    """One log in memory; every store opened over it shares the log, as over one database."""

    def __init__(self) -> None:
        self._log = _Log()
        self._lock = asyncio.Lock()

    async def run(
        self, work: Work[T], write: bool, committed: Callable[[T], object] | None = None
    ) -> T:
        tables = _Tables(self._log)
        if not write:
            return await work(tables)
        async with self._lock:
            try:
                result = await work(tables)
            except BaseException:
                for undo in reversed(tables.undo):
                    undo()
                raise
            if committed is not None:
                committed(result)
            return result

    async def aclose(self) -> None:
        """Nothing to release; the log lives as long as the store."""


async def open_memory(
    signer_for: Callable[[Checkpoint | None], CheckpointPolicy] | None,
    retention: RetentionPolicy | None = None,
    driver: MemoryDriver | None = None,
    max_group: int = DEFAULT_MAX_GROUP,
) -> LogArchive:
    """An archive in memory.

    Args:
        signer_for: As for `expound.archive.engine.open_log`.
        retention: How long payloads are kept (default: 25 months).
        driver: The log to open again (default: a new, empty one).
        max_group: Appends per transaction at most (group commit; 1: each alone).
    """
    return await open_log(
        driver or MemoryDriver(), signer_for, retention or RetentionPolicy(), max_group
    )
