"""The archive in memory: the same engine over dicts, the fake for tests.

It behaves as the databases do, guards included: an idempotency key is taken once, a
payload cannot be removed while retained or held, and a failed unit of work leaves nothing
behind (each write is undone in reverse).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import TypeVar

from expound.archive.adapter import RETENTION_GUARD, Entry, Hold, Query, Work
from expound.archive.checkpoint import Checkpoint
from expound.archive.engine import LogArchive, open_log, stored_entry
from expound.archive.log import NodeKey
from expound.archive.records import KIND_RECORD, StoredRecord
from expound.archive.retention import RetentionPolicy
from expound.archive.signing import CheckpointPolicy
from expound.archive.store import DuplicateIdempotencyKey, LogRow
from expound.errors import RetentionRefused
from expound.times import utc_now

T = TypeVar("T")


@dataclass
class _Log:
    entries: list[tuple[StoredRecord, bytes]] = field(default_factory=list)  # and root_after
    payloads: dict[int, bytes] = field(default_factory=dict)
    nodes: dict[NodeKey, bytes] = field(default_factory=dict)
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    holds: dict[int, Hold] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)


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

    async def insert_entry(self, entry: Entry) -> None:
        log, record = self._log, entry.record
        if record.idempotency_key in log.keys:
            raise DuplicateIdempotencyKey(record.idempotency_key)
        if record.record_id in log.ids or entry.seq != len(log.entries):
            raise ValueError(f"entry {entry.seq} ({record.record_id}) is already taken")
        stored = stored_entry(record, entry.seq, entry.retain_until)
        log.entries.append((stored, entry.root_after))
        log.payloads[entry.seq] = record.canonical
        log.ids[record.record_id] = entry.seq
        if record.idempotency_key:
            log.keys[record.idempotency_key] = entry.seq
        log.nodes.update(entry.nodes)

        def undo() -> None:
            log.entries.pop()
            log.payloads.pop(entry.seq)
            log.ids.pop(record.record_id)
            log.keys.pop(record.idempotency_key, None)
            for key, _ in entry.nodes:
                log.nodes.pop(key)

        self.undo.append(undo)

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
            not query.idempotency_key or record.idempotency_key == query.idempotency_key,
            query.below is None or record.seq < query.below,
        ]
        if listing is not None:
            checks += [
                record.kind == KIND_RECORD,
                not listing.model_id or record.model_id == listing.model_id,
                not listing.decision_id or record.decision_id == listing.decision_id,
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
        if query.record_id or query.idempotency_key:
            seq = log.ids.get(query.record_id) if query.record_id else None
            seq = log.keys.get(query.idempotency_key) if seq is None else seq
            candidates = [] if seq is None else [seq]
        else:
            candidates = list(range(len(log.entries)))
        if query.listing is not None:
            candidates.reverse()
        found = [r for r in map(self._stored, candidates) if self._matches(r, query)]
        return found[: query.limit] if query.limit else found

    async def log_rows(self, start: int, limit: int) -> list[LogRow]:
        return [
            LogRow(seq, record.leaf_hash, root, self._log.payloads.get(seq), record.kind)
            for seq, (record, root) in enumerate(
                self._log.entries[start : start + limit], start=start
            )
        ]

    async def hold(self, seq: int) -> Hold | None:
        return self._log.holds.get(seq)

    async def place_hold(self, seq: int, hold: Hold) -> None:
        self._log.holds[seq] = hold
        self.undo.append(lambda: self._log.holds.pop(seq))

    async def release_hold(self, seq: int) -> None:
        hold = self._log.holds.pop(seq)
        self.undo.append(lambda: self._log.holds.__setitem__(seq, hold))

    async def remove_payload(self, seq: int) -> None:
        # The databases' delete guard on payloads, as a trigger would apply it.
        if self._log.entries[seq][0].retain_until > utc_now() or seq in self._log.holds:
            raise RetentionRefused(f"payload may not be removed: {RETENTION_GUARD}")
        payload = self._log.payloads.pop(seq)
        self.undo.append(lambda: self._log.payloads.__setitem__(seq, payload))


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
) -> LogArchive:
    """An archive in memory.

    Args:
        signer_for: As for `expound.archive.engine.open_log`.
        retention: How long payloads are kept (default: 25 months).
        driver: The log to open again (default: a new, empty one).
    """
    return await open_log(driver or MemoryDriver(), signer_for, retention or RetentionPolicy())
