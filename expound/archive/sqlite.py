"""The embedded archive: SQLite in WAL mode with synchronous=FULL, as a Merkle log.

One connection, used from worker threads one call at a time (sqlite3 is blocking I/O;
the event loop never waits on it). Appends run in ``BEGIN IMMEDIATE`` so there is one
writer at a time even across processes; each append writes the entry, its payload, the
complete subtrees it closes and, when one is due, a signed checkpoint, all in one
transaction. Triggers keep the log append-only: entries, nodes and checkpoints refuse
UPDATE and DELETE, and a payload can be deleted only after its retain-until time and
while no legal hold is placed on it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from expound.archive.checkpoint import Checkpoint
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
from expound.archive.records import KIND_RECORD, NewRecord, StoredRecord, build_tombstone
from expound.archive.retention import RetentionPolicy
from expound.archive.rules import (
    LogRow,
    parse_page_token,
    require_checkpoint,
    require_expirable,
    require_ordered,
)
from expound.archive.signing import CheckpointPolicy
from expound.archive.store import (
    ConsistencyProof,
    DuplicateIdempotencyKey,
    ExpiryReport,
    InclusionProof,
    RecordFilter,
    RecordPage,
)
from expound.errors import ArchiveUnavailable, RecordNotFound, RetentionRefused
from expound.times import utc_now

T = TypeVar("T")

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY CHECK (seq >= 0),
    kind TEXT NOT NULL CHECK (kind IN ('record', 'tombstone')),
    record_id TEXT NOT NULL UNIQUE,
    model_id TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    request_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    decision TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    root_after BLOB NOT NULL CHECK (length(root_after) = 32),
    retain_until TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_model_seq ON records (model_id, seq);
CREATE INDEX IF NOT EXISTS records_decision ON records (decision_id);
CREATE INDEX IF NOT EXISTS records_created ON records (created_at);
CREATE INDEX IF NOT EXISTS records_retain ON records (retain_until);
CREATE TABLE IF NOT EXISTS payloads (
    seq INTEGER PRIMARY KEY REFERENCES records (seq),
    canonical BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL CHECK (level > 0),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY CHECK (size > 0),
    log_id TEXT NOT NULL,
    root_hash BLOB NOT NULL,
    timestamp TEXT NOT NULL,
    signature BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS holds (
    seq INTEGER PRIMARY KEY REFERENCES records (seq),
    reason TEXT NOT NULL,
    placed_at TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS payloads_no_update BEFORE UPDATE ON payloads
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS payloads_retained BEFORE DELETE ON payloads
WHEN (SELECT retain_until FROM records WHERE seq = OLD.seq)
        > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    OR EXISTS (SELECT 1 FROM holds WHERE seq = OLD.seq)
BEGIN SELECT RAISE(ABORT, 'payload is retained or on legal hold'); END;
CREATE TRIGGER IF NOT EXISTS nodes_no_update BEFORE UPDATE ON nodes
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS nodes_no_delete BEFORE DELETE ON nodes
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
"""

COLUMNS = (
    "r.seq, r.record_id, r.model_id, r.decision_id, r.idempotency_key, r.request_sha256, "
    "r.created_at, r.decision, r.sha256, p.canonical, r.leaf_hash, r.kind, r.retain_until, "
    "h.seq IS NOT NULL"
)
FROM = "FROM records r LEFT JOIN payloads p ON p.seq = r.seq LEFT JOIN holds h ON h.seq = r.seq"
INSERT_RECORD = (
    "INSERT INTO records (seq, kind, record_id, model_id, decision_id, idempotency_key, "
    "request_sha256, created_at, decision, sha256, leaf_hash, root_after, retain_until) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
CHECKPOINT_COLUMNS = "log_id, size, root_hash, timestamp, signature"
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def _row_to_record(row: tuple[object, ...]) -> StoredRecord:
    (seq, record_id, model_id, decision_id, key, request_sha256, created, decision, sha) = row[:9]
    body, leaf, kind, retain_until, held = row[9:]
    return StoredRecord(
        seq=int(seq),  # type: ignore[call-overload]
        record_id=str(record_id),
        model_id=str(model_id),
        decision_id=str(decision_id),
        idempotency_key=str(key or ""),
        request_sha256=str(request_sha256),
        created_at=str(created),
        decision=str(decision),
        sha256=str(sha),
        canonical=bytes(body) if isinstance(body, bytes) else b"",
        leaf_hash=bytes(leaf),  # type: ignore[call-overload]
        kind=str(kind),
        retain_until=str(retain_until),
        legal_hold=bool(held),
        expired=body is None,
    )


def _row_to_checkpoint(row: tuple[object, ...]) -> Checkpoint:
    log_id, size, root_hash, timestamp, signature = row
    return Checkpoint(
        str(log_id),
        int(size),  # type: ignore[call-overload]
        bytes(root_hash),  # type: ignore[call-overload]
        str(timestamp),
        bytes(signature),  # type: ignore[call-overload]
    )


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    has_tables = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'records'"
    ).fetchone()[0]
    if has_tables and version != SCHEMA_VERSION:
        conn.close()
        raise ArchiveUnavailable(
            f"{path} holds archive schema version {version}, not {SCHEMA_VERSION}; "
            "it predates the Merkle log and cannot be served"
        )
    conn.executescript(SCHEMA)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return conn


class SqliteArchive:
    """Append-only record store and Merkle log in one SQLite file."""

    def __init__(
        self,
        path: Path,
        signer_for: Callable[[Checkpoint | None], CheckpointPolicy],
        retention: RetentionPolicy,
    ) -> None:
        """Opens (creating if needed) the archive at ``path``.

        Args:
            path: The database file.
            signer_for: Given the latest checkpoint (None for a log never signed), returns
                the policy that signs this log's checkpoints; it should refuse a key that
                did not sign ``latest``.
            retention: How long payloads are kept.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()
        self._conn = _open(path)
        self._retention = retention
        # The frontier of the last append this process committed; checked against the
        # log's size in every append, since other processes may append too.
        self._frontier: tuple[int, list[bytes]] = (0, [])
        try:
            self._signer = signer_for(self._latest_checkpoint(self._conn))
        except BaseException:
            self._conn.close()
            raise

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return work(self._conn)

        return await asyncio.to_thread(locked)

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Runs ``work`` in one ``BEGIN IMMEDIATE`` transaction."""

        def transaction(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                self._frontier = (0, [])
                raise
            return result

        return await self._run(transaction)

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._run(work)
        except sqlite3.Error as exc:
            raise ArchiveUnavailable(f"archive read failed: {exc}") from exc

    # -- the log -------------------------------------------------------------------------

    @staticmethod
    def _size(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT coalesce(max(seq) + 1, 0) FROM records").fetchone()[0])

    @staticmethod
    def _nodes(conn: sqlite3.Connection, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        found: dict[NodeKey, bytes] = {}
        for level, index in keys:
            if level == 0:
                row = conn.execute("SELECT leaf_hash FROM records WHERE seq = ?", (index,))
            else:
                row = conn.execute(
                    "SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)
                )
            value = row.fetchone()
            if value is None:
                raise ArchiveUnavailable(f"the log is missing its node {(level, index)}")
            found[(level, index)] = bytes(value[0])
        return found

    def _current_frontier(self, conn: sqlite3.Connection) -> tuple[int, list[bytes]]:
        size = self._size(conn)
        if self._frontier[0] != size:
            keys = frontier_keys(size)
            nodes = self._nodes(conn, keys)
            self._frontier = (size, [nodes[key] for key in keys])
        return self._frontier

    @staticmethod
    def _latest_checkpoint(conn: sqlite3.Connection) -> Checkpoint | None:
        row = conn.execute(
            f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else _row_to_checkpoint(row)

    def _sign(self, conn: sqlite3.Connection, size: int, root: bytes) -> Checkpoint:
        checkpoint = self._signer.sign(size, root)
        conn.execute(
            f"INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (
                checkpoint.log_id,
                checkpoint.size,
                checkpoint.root_hash,
                checkpoint.timestamp,
                checkpoint.signature,
            ),
        )
        return checkpoint

    def _append_in(self, conn: sqlite3.Connection, record: NewRecord) -> StoredRecord:
        """Appends inside the caller's write transaction."""
        size, frontier = self._current_frontier(conn)
        step = plan_append(size, frontier, record.leaf_hash)
        retain_until = self._retention.retain_until(record.model_id, record.created_at)
        conn.execute(
            INSERT_RECORD,
            (
                step.seq,
                record.kind,
                record.record_id,
                record.model_id,
                record.decision_id,
                record.idempotency_key or None,
                record.request_sha256,
                record.created_at,
                record.decision,
                record.sha256,
                step.leaf,
                step.root,
                retain_until,
            ),
        )
        conn.execute(
            "INSERT INTO payloads (seq, canonical) VALUES (?, ?)", (step.seq, record.canonical)
        )
        conn.executemany(
            "INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)",
            [(level, index, value) for (level, index), value in step.nodes],
        )
        if self._signer.due(self._latest_checkpoint(conn), step.seq + 1, datetime.now(UTC)):
            self._sign(conn, step.seq + 1, step.root)
        self._frontier = (step.seq + 1, step.frontier)
        return StoredRecord(
            seq=step.seq,
            record_id=record.record_id,
            model_id=record.model_id,
            decision_id=record.decision_id,
            idempotency_key=record.idempotency_key,
            request_sha256=record.request_sha256,
            created_at=record.created_at,
            decision=record.decision,
            sha256=record.sha256,
            canonical=record.canonical,
            leaf_hash=step.leaf,
            kind=record.kind,
            retain_until=retain_until,
        )

    async def append(self, record: NewRecord) -> StoredRecord:
        try:
            return await self._write(lambda conn: self._append_in(conn, record))
        except sqlite3.IntegrityError as exc:
            if record.idempotency_key and "idempotency_key" in str(exc):
                raise DuplicateIdempotencyKey(record.idempotency_key) from exc
            raise ArchiveUnavailable(f"record could not be committed: {exc}") from exc
        except sqlite3.Error as exc:
            raise ArchiveUnavailable(f"record could not be committed: {exc}") from exc

    async def append_batch(self, records: Sequence[NewRecord]) -> list[StoredRecord]:
        """Appends several records in one transaction (imports and benchmarks).

        One commit for the batch: cheaper per record, and all or none are written.
        """
        try:
            return await self._write(lambda conn: [self._append_in(conn, r) for r in records])
        except sqlite3.Error as exc:
            raise ArchiveUnavailable(f"records could not be committed: {exc}") from exc

    # -- checkpoints and proofs ----------------------------------------------------------

    def _fresh_checkpoint(self, conn: sqlite3.Connection, covering: int) -> Checkpoint | None:
        """The latest checkpoint, signing one now if it covers fewer than ``covering``."""
        latest = self._latest_checkpoint(conn)
        if latest is not None and latest.size >= covering:
            return latest
        size, frontier = self._current_frontier(conn)
        if size == 0:
            return None
        return self._sign(conn, size, fold_root(frontier))

    async def _covering(self, covering: int) -> Checkpoint | None:
        latest = await self._read(self._latest_checkpoint)
        if latest is not None and latest.size >= covering:
            return latest
        try:
            return await self._write(lambda conn: self._fresh_checkpoint(conn, covering))
        except sqlite3.Error as exc:
            raise ArchiveUnavailable(f"checkpoint could not be signed: {exc}") from exc

    def _checkpoint_at(self, conn: sqlite3.Connection, size: int) -> Checkpoint | None:
        row = conn.execute(
            f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE size = ?", (size,)
        ).fetchone()
        return None if row is None else _row_to_checkpoint(row)

    async def checkpoint(self, size: int = 0) -> Checkpoint | None:
        if size == 0:
            return await self._covering(await self._read(self._size))
        found = await self._read(lambda conn: self._checkpoint_at(conn, size))
        return require_checkpoint(found, size, "new_size")

    async def prove_inclusion(self, record: StoredRecord) -> InclusionProof:
        checkpoint = await self._covering(record.seq + 1)
        assert checkpoint is not None  # the log holds ``record``
        ranges = inclusion_ranges(record.seq, checkpoint.size)
        nodes = await self._read(lambda conn: self._nodes(conn, keys_of(ranges)))
        return InclusionProof(record.seq, record.leaf_hash, hashes_of(ranges, nodes), checkpoint)

    async def prove_consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        new = require_checkpoint(await self.checkpoint(new_size), new_size, "new_size")
        require_ordered(old_size, new.size)
        old = None
        if old_size:
            old = require_checkpoint(
                await self._read(lambda conn: self._checkpoint_at(conn, old_size)),
                old_size,
                "old_size",
            )
        ranges = consistency_ranges(old_size, new.size)
        nodes = await self._read(lambda conn: self._nodes(conn, keys_of(ranges)))
        return ConsistencyProof(old, new, hashes_of(ranges, nodes))

    # -- reads ---------------------------------------------------------------------------

    @staticmethod
    def _get(conn: sqlite3.Connection, record_id: str) -> StoredRecord:
        row = conn.execute(f"SELECT {COLUMNS} {FROM} WHERE r.record_id = ?", (record_id,))
        found = row.fetchone()
        if found is None:
            raise RecordNotFound(f"no record {record_id!r}")
        return _row_to_record(found)

    async def get(self, record_id: str) -> StoredRecord:
        return await self._read(lambda conn: self._get(conn, record_id))

    async def find_by_idempotency_key(self, key: str) -> StoredRecord | None:
        def select(conn: sqlite3.Connection) -> StoredRecord | None:
            row = conn.execute(
                f"SELECT {COLUMNS} {FROM} WHERE r.idempotency_key = ?", (key,)
            ).fetchone()
            return None if row is None else _row_to_record(row)

        return await self._read(select)

    async def list(self, where: RecordFilter, page_size: int, page_token: str) -> RecordPage:
        below = parse_page_token(page_token)
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        clauses = ["r.kind = ?"]
        params: list[object] = [KIND_RECORD]
        for column, value, op in [
            ("r.model_id", where.model_id, "="),
            ("r.decision_id", where.decision_id, "="),
            ("r.created_at", where.since, ">="),
            ("r.created_at", where.until, "<"),
        ]:
            if value:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        if below is not None:
            clauses.append("r.seq < ?")
            params.append(below)
        sql = f"SELECT {COLUMNS} {FROM} WHERE {' AND '.join(clauses)} ORDER BY r.seq DESC LIMIT ?"
        params.append(size + 1)

        def select(conn: sqlite3.Connection) -> RecordPage:
            rows = [_row_to_record(r) for r in conn.execute(sql, params).fetchall()]
            more = len(rows) > size
            rows = rows[:size]
            return RecordPage(rows, str(rows[-1].seq) if more else "")

        return await self._read(select)

    async def count(self) -> int:
        """Number of log entries (records and tombstones)."""
        return await self._read(self._size)

    # -- retention -----------------------------------------------------------------------

    async def set_legal_hold(self, record_id: str, held: bool, reason: str) -> StoredRecord:
        def hold(conn: sqlite3.Connection) -> StoredRecord:
            record = self._get(conn, record_id)
            if held:
                conn.execute(
                    "INSERT OR REPLACE INTO holds (seq, reason, placed_at) VALUES (?, ?, ?)",
                    (record.seq, reason, utc_now()),
                )
            else:
                conn.execute("DELETE FROM holds WHERE seq = ?", (record.seq,))
            return self._get(conn, record_id)

        try:
            return await self._write(hold)
        except sqlite3.Error as exc:
            raise ArchiveUnavailable(f"hold could not be changed: {exc}") from exc

    async def expire(self, record_ids: Sequence[str] | None = None) -> ExpiryReport:
        def expire_due(conn: sqlite3.Connection) -> ExpiryReport:
            now = utc_now()
            if record_ids is None:
                rows = conn.execute(
                    f"SELECT {COLUMNS} {FROM} WHERE r.kind = ? AND r.retain_until <= ? "
                    "AND p.seq IS NOT NULL AND h.seq IS NULL ORDER BY r.seq",
                    (KIND_RECORD, now),
                ).fetchall()
                due = [_row_to_record(row) for row in rows]
            else:
                due = [self._get(conn, record_id) for record_id in record_ids]
            expired, tombstones = [], []
            for record in due:
                require_expirable(record, now)
                conn.execute("DELETE FROM payloads WHERE seq = ?", (record.seq,))
                tombstone = build_tombstone(record, str(uuid.uuid4()), now)
                tombstones.append(self._append_in(conn, tombstone))
                expired.append(record)
            return ExpiryReport(expired, tombstones)

        try:
            return await self._write(expire_due)
        except sqlite3.IntegrityError as exc:
            raise RetentionRefused(f"payload may not be removed: {exc}") from exc
        except sqlite3.Error as exc:
            raise ArchiveUnavailable(f"expiry could not be committed: {exc}") from exc

    async def aclose(self) -> None:
        await self._run(lambda c: c.close())


def read_log(path: Path) -> tuple[Iterator[LogRow], list[Checkpoint]]:
    """Everything an audit reads from an archive file, opened read-only.

    Args:
        path: The SQLite archive.

    Returns:
        The log entries in ``seq`` order (streamed) and every checkpoint, by size.
    """
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    checkpoints = [
        _row_to_checkpoint(row)
        for row in conn.execute(f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size")
    ]

    def rows() -> Iterator[LogRow]:
        try:
            cursor = conn.execute(
                "SELECT r.seq, r.leaf_hash, r.root_after, p.canonical, r.kind "
                "FROM records r LEFT JOIN payloads p ON p.seq = r.seq ORDER BY r.seq"
            )
            for seq, leaf, root_after, canonical, kind in cursor:
                yield LogRow(int(seq), bytes(leaf), bytes(root_after), canonical, str(kind))
        finally:
            conn.close()

    return rows(), checkpoints
