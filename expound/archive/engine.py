"""The archive's one log engine, over thin adapters for SQLite, PostgreSQL and memory.

Everything the archive does is written here once: appends (with the cached frontier and the
checkpoint signed when one is due, or when the service's schedule calls), proofs, listing,
holds, releases and expiries (each a log entry naming its actor), the access log and the
audit's read. Reads never sign. An
adapter (`expound.archive.adapter`) only runs a unit of work in one transaction over its
tables (taking the log's write lock for writes) and turns its database's errors into ours;
the model is Trillian Tessera, whose storage drivers share one integration of entries into
the tree.
"""

from __future__ import annotations

import asyncio
import builtins
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from expound.archive.adapter import Driver, Entry, Query, Tables, Work
from expound.archive.checkpoint import Checkpoint
from expound.archive.grouping import DEFAULT_MAX_GROUP, GroupCommit
from expound.archive.log import (
    NodeKey,
    consistency_ranges,
    fold_root,
    frontier_keys,
    hashes_of,
    inclusion_ranges,
    keys_of,
    plan_append,
)
from expound.archive.records import (
    KIND_RECORD,
    EventFacts,
    NewRecord,
    StoredRecord,
    build_hold,
    build_release,
    build_tombstone,
)
from expound.archive.retention import RetentionPolicy, require_expirable
from expound.archive.signing import CheckpointPolicy
from expound.archive.store import (
    AccessEntry,
    ConsistencyProof,
    DuplicateIdempotencyKey,
    ExpiryReport,
    InclusionProof,
    LogHead,
    LogRead,
    LogRow,
    RecordFilter,
    RecordPage,
)
from expound.errors import (
    ArchiveUnavailable,
    FieldViolation,
    InvalidRequest,
    RecordNotFound,
    RetentionRefused,
)
from expound.times import utc_now

T = TypeVar("T")

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
MAX_ACCESS_PAGE = 10_000
READ_BATCH = 200
"""Entries per read while an audit streams the log: few enough that a batch's payloads are
still in the CPU's cache when the audit hashes them (2000 was measurably slower)."""


def stored_entry(record: NewRecord, seq: int) -> StoredRecord:
    """``record`` as appended at ``seq``: payload present, no hold."""
    return StoredRecord(
        seq=seq,
        record_id=record.record_id,
        model_id=record.model_id,
        decision_id=record.decision_id,
        idempotency_key=record.idempotency_key,
        request_sha256=record.request_sha256,
        created_at=record.created_at,
        decision=record.decision,
        sha256=record.sha256,
        canonical=record.canonical,
        leaf_hash=record.leaf_hash,
        kind=record.kind,
        retain_until=record.retain_until,
        principal=record.principal,
        target_seq=record.target_seq,
    )


MAX_PAGE_TOKEN = 2**63 - 1


def parse_page_token(token: str) -> int | None:
    """The sequence number a page token continues below (None for the first page)."""
    if not token:
        return None
    # ASCII digits only: str.isdigit() also accepts '²' and '١٢٣', which int() refuses or
    # reads as another number; and the sequence number must fit the stores' 64-bit integers.
    valid = token.isascii() and token.isdigit() and len(token) <= 19
    if not valid or int(token) > MAX_PAGE_TOKEN:
        raise InvalidRequest(
            "invalid page token", [FieldViolation("page_token", "not a token this service issued")]
        )
    return int(token)


def require_checkpoint(found: Checkpoint | None, size: int, field_name: str) -> Checkpoint:
    """``found``, or InvalidRequest naming the field when no checkpoint was signed at ``size``."""
    if found is None:
        raise InvalidRequest(
            f"no signed checkpoint at size {size}",
            [FieldViolation(field_name, "not the size of a signed checkpoint")],
        )
    return found


Frontier = tuple[int, list[bytes]]


@dataclass
class _Tail:
    """The log's end inside one write transaction: its frontier and latest checkpoint."""

    frontier: Frontier
    latest: Checkpoint | None
    pending: list[Entry] = field(default_factory=list)
    """Entries planned and not yet written: a group's go to the tables at once."""


class LogArchive:
    """An archive store: the Merkle log over one adapter. Open it with `open_log`."""

    def __init__(
        self,
        driver: Driver,
        signer: CheckpointPolicy | None,
        retention: RetentionPolicy,
        max_group: int = DEFAULT_MAX_GROUP,
    ) -> None:
        """Use `open_log`, which checks the signer against the log."""
        self._driver = driver
        self._signer = signer
        self._retention = retention
        # The frontier after the last append this process committed; every write checks it
        # against the log's size, since other processes may append too.
        self._frontier: Frontier = (0, [])
        # Appends that arrive together share one transaction (1: each its own).
        self._group = GroupCommit(self.append_batch, max_group) if max_group > 1 else None

    # -- the log -------------------------------------------------------------------------

    async def _frontier_in(self, tables: Tables) -> Frontier:
        size = await tables.size()
        if self._frontier[0] == size:
            return self._frontier
        keys = frontier_keys(size)
        nodes = await _nodes_in(tables, keys)
        return size, [nodes[key] for key in keys]

    async def _tail_in(self, tables: Tables) -> _Tail:
        return _Tail(await self._frontier_in(tables), await tables.checkpoint(None))

    def _keep_frontier(self, committed: tuple[object, _Tail]) -> None:
        self._frontier = committed[1].frontier

    def _signing(self) -> CheckpointPolicy:
        if self._signer is None:
            raise ArchiveUnavailable("this archive was opened to be read, not written")
        return self._signer

    async def _append_in(self, tables: Tables, record: NewRecord, tail: _Tail) -> StoredRecord:
        """Plans ``record`` after ``tail`` (updated; the caller writes ``tail.pending``),
        signing a checkpoint if one is due."""
        signer = self._signing()
        if record.kind == KIND_RECORD:
            # The retain-until time is part of the hashed payload, so the audit covers it;
            # the log's policy decides it (a record built with it is not serialised again).
            retain_until = self.retain_until(record.model_id, record.created_at)
            if record.retain_until != retain_until:
                record = record.sealed(retain_until)
        step = plan_append(*tail.frontier, record.leaf_hash)
        tail.pending.append(Entry(step.seq, record, step.root, step.nodes))
        tail.frontier = (step.seq + 1, step.frontier)
        # The latest checkpoint was read under the log's lock: nobody else signs meanwhile.
        if signer.due(tail.latest, step.seq + 1, datetime.now(UTC)):
            tail.latest = signer.sign_after(tail.latest, step.seq + 1, step.root)
            await tables.insert_checkpoint(tail.latest)
        return stored_entry(record, step.seq)

    def retain_until(self, model_id: str, created_at: str) -> str:
        """The retain-until time this log gives a record of ``model_id`` made at ``created_at``."""
        return self._retention.retain_until(model_id, created_at)

    async def append(self, record: NewRecord) -> StoredRecord:
        try:
            if self._group is not None:
                return await self._group.append(record)
            (stored,) = await self.append_batch([record])
        except DuplicateIdempotencyKey as exc:
            raise DuplicateIdempotencyKey(f"{record.principal}: {record.idempotency_key}") from exc
        return stored

    @property
    def transactions(self) -> int:
        """Group-commit transactions so far (0 with grouping off): appends per group."""
        return self._group.groups if self._group is not None else 0

    async def append_batch(self, records: Sequence[NewRecord]) -> list[StoredRecord]:
        """Appends several records in one transaction: all or none (groups, imports)."""

        async def work(tables: Tables) -> tuple[list[StoredRecord], _Tail]:
            tail = await self._tail_in(tables)
            stored = [await self._append_in(tables, record, tail) for record in records]
            await tables.insert_entries(tail.pending)
            return stored, tail

        stored, _ = await self._driver.run(work, True, self._keep_frontier)
        return stored

    # -- checkpoints and proofs ----------------------------------------------------------

    async def _latest(self) -> Checkpoint | None:
        return await self._driver.run(lambda tables: tables.checkpoint(None), write=False)

    async def publish_checkpoint(self, force: bool = False) -> Checkpoint | None:
        """Signs a checkpoint over the whole log when one is due: the writer's schedule.

        Reads never sign: the service calls this on a timer (and appends sign when due),
        so a checkpoint covers every entry within ``every_seconds``.

        Args:
            force: Sign whenever the log grew since the last checkpoint, due or not.

        Returns:
            The checkpoint signed now, or None when none was due (or the log is empty).
        """

        async def sign(tables: Tables) -> Checkpoint | None:
            # Due or not is decided under the log's write lock, after the last signer's
            # commit: replicas sharing the log sign once per interval between them.
            signer = self._signing()
            latest = await tables.checkpoint(None)
            size, frontier = await self._frontier_in(tables)
            grew = size > (latest.size if latest else 0)
            if not grew or not (force or signer.due(latest, size, datetime.now(UTC))):
                return None
            signed = signer.sign_after(latest, size, fold_root(frontier))
            await tables.insert_checkpoint(signed)
            return signed

        return await self._driver.run(sign, write=True)

    async def _checkpoint_at(self, size: int, field_name: str) -> Checkpoint:
        found = await self._driver.run(lambda tables: tables.checkpoint(size), write=False)
        return require_checkpoint(found, size, field_name)

    async def _read_nodes(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        return await self._driver.run(lambda tables: _nodes_in(tables, keys), write=False)

    async def checkpoint(self, size: int = 0) -> Checkpoint | None:
        if size:
            return await self._checkpoint_at(size, "new_size")
        return await self._latest()

    async def head(self) -> LogHead:
        async def read(tables: Tables) -> LogHead:
            return LogHead(await tables.size(), await tables.checkpoint(None))

        return await self._driver.run(read, write=False)

    async def prove_inclusion(self, record: StoredRecord) -> InclusionProof:
        checkpoint = await self._latest()
        if checkpoint is None or checkpoint.size <= record.seq:
            uncovered = ArchiveUnavailable(
                f"entry {record.seq} is not yet covered by a signed checkpoint; the service "
                "signs one within its checkpoint interval: retry then"
            )
            # The checkpoint task polls four times per interval.
            uncovered.retry_after_s = self._signer.every_seconds / 4 if self._signer else 1.0
            raise uncovered
        ranges = inclusion_ranges(record.seq, checkpoint.size)
        nodes = await self._read_nodes(keys_of(ranges))
        return InclusionProof(record.seq, record.leaf_hash, hashes_of(ranges, nodes), checkpoint)

    async def prove_consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        new = require_checkpoint(await self.checkpoint(new_size), new_size, "new_size")
        if old_size > new.size:
            raise InvalidRequest(
                "old_size is larger than new_size",
                [FieldViolation("old_size", f"at most new_size ({new.size})")],
            )
        old = await self._checkpoint_at(old_size, "old_size") if old_size else None
        ranges = consistency_ranges(old_size, new.size)
        nodes = await self._read_nodes(keys_of(ranges))
        return ConsistencyProof(old, new, hashes_of(ranges, nodes))

    # -- reads ---------------------------------------------------------------------------

    async def _select(self, query: Query) -> list[StoredRecord]:
        return await self._driver.run(lambda tables: tables.select(query), write=False)

    async def get(self, record_id: str) -> StoredRecord:
        found = await self._select(Query(record_id=record_id))
        if not found:
            raise RecordNotFound(f"no record {record_id!r}")
        return found[0]

    async def find_by_idempotency_key(self, principal: str, key: str) -> StoredRecord | None:
        found = await self._select(Query(idempotency_key=key, principal=principal))
        return found[0] if found else None

    async def history(self, record_id: str) -> list[StoredRecord]:
        """The events on a record, oldest first: holds, their releases, its tombstone."""
        record = await self.get(record_id)
        return await self._select(Query(about_seq=record.seq))

    async def list(self, where: RecordFilter, page_size: int, page_token: str) -> RecordPage:
        below = parse_page_token(page_token)
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        rows = await self._select(Query(listing=where, below=below, limit=size + 1))
        more = len(rows) > size
        rows = rows[:size]
        return RecordPage(rows, str(rows[-1].seq) if more else "")

    async def read_log(self) -> LogRead:
        async def rows() -> AsyncGenerator[LogRow, None]:
            # The next batch is read while the caller checks this one: reading and hashing
            # overlap, so the audit costs about the larger of the two, not their sum.
            pending = asyncio.ensure_future(self._driver.run(_log_rows(0), write=False))
            try:
                while True:
                    batch = await pending
                    if len(batch) == READ_BATCH:
                        after = _log_rows(batch[-1].seq + 1)
                        pending = asyncio.ensure_future(self._driver.run(after, write=False))
                    for row in batch:
                        yield row
                    if len(batch) < READ_BATCH:
                        return
            finally:
                pending.cancel()

        checkpoints = await self._driver.run(lambda tables: tables.checkpoints(), write=False)
        return LogRead(checkpoints, rows())

    # -- retention -----------------------------------------------------------------------

    async def _append_event(self, build: Callable[[Tables], Awaitable[NewRecord]]) -> StoredRecord:
        async def work(tables: Tables) -> tuple[StoredRecord, _Tail]:
            event = await build(tables)
            tail = await self._tail_in(tables)
            stored = await self._append_in(tables, event, tail)
            await tables.insert_entries(tail.pending)
            return stored, tail

        stored, _ = await self._driver.run(work, True, self._keep_frontier)
        return stored

    async def place_hold(self, record_id: str, actor: str, reason: str) -> StoredRecord:
        async def hold(tables: Tables) -> NewRecord:
            record = await _get_in(tables, record_id)
            if record.kind != KIND_RECORD or record.expired:
                state = "expired" if record.expired else f"a {record.kind}"
                raise RetentionRefused(f"{record_id} is {state}: nothing to hold")
            placed = await tables.active_hold(record.seq)
            if placed is not None:
                raise RetentionRefused(
                    f"{record_id} is already under legal hold {placed.record_id} since "
                    f"{placed.created_at} ({placed.body().get('reason', '')}); release it "
                    "to place another"
                )
            return build_hold(record, _facts(actor, reason))

        return await self._append_event(hold)

    async def release_hold(self, record_id: str, actor: str, reason: str) -> StoredRecord:
        async def release(tables: Tables) -> NewRecord:
            record = await _get_in(tables, record_id)
            placed = await tables.active_hold(record.seq)
            if placed is None:
                raise RetentionRefused(f"{record_id} is not under legal hold")
            return build_release(record, placed, _facts(actor, reason))

        return await self._append_event(release)

    async def expire(
        self, actor: str, record_ids: Sequence[str] | None = None, reason: str = ""
    ) -> ExpiryReport:
        now = utc_now()
        why = reason or "retention period ended"

        async def expire_due(tables: Tables) -> tuple[ExpiryReport, _Tail]:
            if record_ids is None:
                due = await tables.select(Query(expirable_at=now))
            else:
                # Each record once: a name given twice must not log two tombstones.
                due = [await _get_in(tables, record_id) for record_id in dict.fromkeys(record_ids)]
            tail = await self._tail_in(tables)
            tombstones = []
            for record in due:
                require_expirable(record, now)
                await tables.remove_payload(record.seq)
                tombstone = build_tombstone(record, _facts(actor, why, now))
                tombstones.append(await self._append_in(tables, tombstone, tail))
            await tables.insert_entries(tail.pending)
            return ExpiryReport(due, tombstones), tail

        report, _ = await self._driver.run(expire_due, True, self._keep_frontier)
        return report

    # -- the access log ------------------------------------------------------------------

    async def log_access(self, entry: AccessEntry) -> None:
        """Appends one read of records to the access log (append-only, in the database)."""
        await self._driver.run(lambda tables: tables.insert_access(entry), write=True)

    async def read_access_log(
        self, after: int = 0, limit: int = 1000, record_id: str = ""
    ) -> builtins.list[AccessEntry]:
        """Access-log entries with ``seq`` above ``after``, oldest first.

        With ``record_id``, only the reads whose answer held that record: who saw it.
        """
        size = min(max(limit, 1), MAX_ACCESS_PAGE)
        return await self._driver.run(
            lambda tables: tables.access_rows(after, size, record_id), write=False
        )

    async def aclose(self) -> None:
        if self._group is not None:
            await self._group.aclose()  # every queued append answered first
        await self._driver.aclose()


def _facts(actor: str, reason: str, at: str = "") -> EventFacts:
    return EventFacts(str(uuid.uuid4()), actor, reason, at or utc_now())


async def _nodes_in(tables: Tables, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
    found = await tables.nodes(keys)
    missing = set(keys) - found.keys()
    if missing:
        raise ArchiveUnavailable(f"the log is missing its nodes {sorted(missing)}")
    return found


def _log_rows(start: int) -> Work[list[LogRow]]:
    return lambda tables: tables.log_rows(start, READ_BATCH)


async def _get_in(tables: Tables, record_id: str) -> StoredRecord:
    found = await tables.select(Query(record_id=record_id))
    if not found:
        raise RecordNotFound(f"no record {record_id!r}")
    return found[0]


async def open_log(
    driver: Driver,
    signer_for: Callable[[Checkpoint | None], CheckpointPolicy] | None,
    retention: RetentionPolicy,
    max_group: int = DEFAULT_MAX_GROUP,
) -> LogArchive:
    """The store over ``driver``, its signer checked against the log's latest checkpoint.

    Args:
        driver: The opened adapter; closed here if the log cannot be opened.
        signer_for: Given the latest checkpoint (None for a log never signed), the policy
            that signs this log; it should refuse a key that did not sign ``latest``. None
            opens the log to be read only (an audit needs no private key).
        retention: How long payloads are kept.
        max_group: Appends per transaction at most (group commit); 1 commits each alone.
    """
    try:
        latest = await driver.run(lambda tables: tables.checkpoint(None), write=False)
        signer = None if signer_for is None else signer_for(latest)
    except BaseException:
        await driver.aclose()
        raise
    return LogArchive(driver, signer, retention, max_group)
