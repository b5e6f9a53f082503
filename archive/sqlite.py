"""The embedded archive: SQLite in WAL mode with synchronous=FULL.

One connection, used from worker threads one call at a time (sqlite3 is blocking I/O;
the event loop never waits on it). Appends run in ``BEGIN IMMEDIATE`` so there is one
writer at a time even across processes, and triggers refuse UPDATE and DELETE: the
database itself keeps the log append-only.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from expound.archive.records import NewRecord, StoredRecord
from expound.archive.store import DuplicateIdempotencyKey, RecordFilter, RecordPage
from expound.errors import ArchiveUnavailable, FieldViolation, InvalidRequest, RecordNotFound

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL UNIQUE,
    model_id TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    request_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    decision TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    canonical BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_model_seq ON records (model_id, seq);
CREATE INDEX IF NOT EXISTS records_decision ON records (decision_id);
CREATE INDEX IF NOT EXISTS records_created ON records (created_at);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
"""

COLUMNS = (
    "seq, record_id, model_id, decision_id, idempotency_key, request_sha256, "
    "created_at, decision, sha256, canonical"
)
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def _row_to_record(row: tuple[object, ...]) -> StoredRecord:
    seq, record_id, model_id, decision_id, key, request_sha256, created, decision, sha, body = row
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
        canonical=body if isinstance(body, bytes) else str(body).encode(),
    )


def parse_page_token(token: str) -> int | None:
    """The sequence number a page token continues below (None for the first page)."""
    if not token:
        return None
    if not token.isdigit() or len(token) > 19:
        raise InvalidRequest(
            "invalid page token", [FieldViolation("page_token", "not a token this service issued")]
        )
    return int(token)


class SqliteArchive:
    """Append-only record store in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return work(self._conn)

        return await asyncio.to_thread(locked)

    async def append(self, record: NewRecord) -> StoredRecord:
        def insert(conn: sqlite3.Connection) -> StoredRecord:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    cursor = conn.execute(
                        f"INSERT INTO records ({COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            record.record_id,
                            record.model_id,
                            record.decision_id,
                            record.idempotency_key or None,
                            record.request_sha256,
                            record.created_at,
                            record.decision,
                            record.sha256,
                            record.canonical,
                        ),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError as exc:
                if record.idempotency_key and "idempotency_key" in str(exc):
                    raise DuplicateIdempotencyKey(record.idempotency_key) from exc
                raise ArchiveUnavailable(f"record could not be committed: {exc}") from exc
            except sqlite3.Error as exc:
                raise ArchiveUnavailable(f"record could not be committed: {exc}") from exc
            seq = cursor.lastrowid
            assert seq is not None
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
            )

        return await self._run(insert)

    async def get(self, record_id: str) -> StoredRecord:
        def select(conn: sqlite3.Connection) -> StoredRecord:
            row = conn.execute(
                f"SELECT {COLUMNS} FROM records WHERE record_id = ?", (record_id,)
            ).fetchone()
            if row is None:
                raise RecordNotFound(f"no record {record_id!r}")
            return _row_to_record(row)

        return await self._read(select)

    async def find_by_idempotency_key(self, key: str) -> StoredRecord | None:
        def select(conn: sqlite3.Connection) -> StoredRecord | None:
            row = conn.execute(
                f"SELECT {COLUMNS} FROM records WHERE idempotency_key = ?", (key,)
            ).fetchone()
            return None if row is None else _row_to_record(row)

        return await self._read(select)

    async def list(self, where: RecordFilter, page_size: int, page_token: str) -> RecordPage:
        below = parse_page_token(page_token)
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        clauses: list[str] = []
        params: list[object] = []
        for column, value, op in [
            ("model_id", where.model_id, "="),
            ("decision_id", where.decision_id, "="),
            ("created_at", where.since, ">="),
            ("created_at", where.until, "<"),
        ]:
            if value:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        if below is not None:
            clauses.append("seq < ?")
            params.append(below)
        sql = f"SELECT {COLUMNS} FROM records"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(size + 1)

        def select(conn: sqlite3.Connection) -> RecordPage:
            rows = [_row_to_record(r) for r in conn.execute(sql, params).fetchall()]
            more = len(rows) > size
            rows = rows[:size]
            return RecordPage(rows, str(rows[-1].seq) if more else "")

        return await self._read(select)

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._run(work)
        except sqlite3.Error as exc:
            raise ArchiveUnavailable(f"archive read failed: {exc}") from exc

    async def count(self) -> int:
        """Number of records (for tests and health)."""
        return await self._read(
            lambda c: int(c.execute("SELECT count(*) FROM records").fetchone()[0])
        )

    async def aclose(self) -> None:
        await self._run(lambda c: c.close())
