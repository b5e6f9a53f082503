"""The embedded archive: SQLite in WAL mode with synchronous=FULL.

One connection, one transaction at a time. Writes run in ``BEGIN IMMEDIATE``, so there is
one writer at a time even across processes. When the log's write lock is free at once (the
service is its only writer, and group commit sends one transaction at a time), a write's
statements run on the event loop and its COMMIT in the driver's commit thread; otherwise,
and for reads, the whole transaction runs in a worker thread, which waits for the lock.
When the statements on the loop take over ``SLOW_ON_LOOP_S`` (median of the last
``SLOW_WINDOW``), the next ``SLOW_BACKOFF_S`` of writes go to the thread.

Why split: a group's statements take a fraction of a millisecond of CPU, but a hand-off of
the whole transaction to a thread cost 4-7 ms per group under load, because every sqlite3
call in the thread trades the GIL with the loop and the answer waits for a loop iteration
to come back. The COMMIT is one call, and the one that waits on the disk (the fsync of
synchronous=FULL, 0.2-2 ms here depending on the disk's load): in the commit thread it
releases the GIL while the loop serves other calls, whose appends form the next group
(``bench/scale_bench.py``; README "Scaling out"). SQLite's automatic WAL checkpoint would
run inside a commit, so the writer turns it off and checkpoints in a worker thread, about
as often as SQLite would.

Triggers keep the log append-only: entries, nodes and checkpoints refuse UPDATE and
DELETE, and a payload can be deleted only after its retain-until time and while no legal
hold is placed on it. The log itself is `expound.archive.engine`; this module only
connects, locks and translates errors.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from expound.archive.adapter import Work, failure
from expound.archive.checkpoint import Checkpoint
from expound.archive.engine import LogArchive, open_log
from expound.archive.files import private_directory, private_umask
from expound.archive.grouping import DEFAULT_MAX_GROUP
from expound.archive.retention import RetentionPolicy
from expound.archive.signing import CheckpointPolicy
from expound.archive.sql import Row, SqlTables
from expound.errors import ArchiveUnavailable

T = TypeVar("T")
_log = logging.getLogger(__name__)

SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY CHECK (seq >= 0),
    kind TEXT NOT NULL CHECK (kind IN ('record', 'tombstone', 'hold', 'release')),
    record_id TEXT NOT NULL UNIQUE,
    model_id TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    idempotency_key TEXT,
    request_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    decision TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    root_after BLOB NOT NULL CHECK (length(root_after) = 32),
    retain_until TEXT NOT NULL,
    target_seq INTEGER REFERENCES records (seq),
    CONSTRAINT records_idempotency_key UNIQUE (principal, idempotency_key)
);
CREATE INDEX IF NOT EXISTS records_model_seq ON records (model_id, seq);
CREATE INDEX IF NOT EXISTS records_decision ON records (decision_id);
CREATE INDEX IF NOT EXISTS records_principal_seq ON records (principal, seq);
CREATE INDEX IF NOT EXISTS records_created ON records (created_at);
CREATE INDEX IF NOT EXISTS records_retain ON records (retain_until);
CREATE INDEX IF NOT EXISTS records_target ON records (target_seq) WHERE target_seq IS NOT NULL;
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
    signature BLOB NOT NULL,
    key_id BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS access_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    principal TEXT NOT NULL,
    rpc TEXT NOT NULL,
    request_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS access_records (
    access_seq INTEGER NOT NULL REFERENCES access_log (seq),
    position INTEGER NOT NULL CHECK (position >= 0),
    record_id TEXT NOT NULL,
    PRIMARY KEY (access_seq, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS access_records_record ON access_records (record_id, access_seq);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS payloads_no_update BEFORE UPDATE ON payloads
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS payloads_retained BEFORE DELETE ON payloads
WHEN (SELECT kind <> 'record' OR retain_until > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        FROM records WHERE seq = OLD.seq)
    OR EXISTS (SELECT 1 FROM records h WHERE h.kind = 'hold' AND h.target_seq = OLD.seq
        AND NOT EXISTS (SELECT 1 FROM records x WHERE x.kind = 'release' AND x.target_seq = h.seq))
BEGIN SELECT RAISE(ABORT, 'payload is retained or on legal hold'); END;
CREATE TRIGGER IF NOT EXISTS nodes_no_update BEFORE UPDATE ON nodes
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS nodes_no_delete BEFORE DELETE ON nodes
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS access_log_no_update BEFORE UPDATE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS access_log_no_delete BEFORE DELETE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS access_records_no_update BEFORE UPDATE ON access_records
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS access_records_no_delete BEFORE DELETE ON access_records
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
"""


def _drive(work: Coroutine[Any, Any, T]) -> T:
    """Runs a unit of work to its end in this thread.

    The engine's work is a coroutine so that it runs unchanged over asyncio drivers; over
    sqlite3 every call returns at once, so it never suspends and one ``send`` finishes it:
    a whole transaction costs one thread hop.
    """
    try:
        work.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    work.close()
    raise RuntimeError("archive work suspended on a synchronous connection")


class _Cursor:
    """`expound.archive.sql.Cursor` over the sqlite3 connection, in the worker thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def rows(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        return self._conn.execute(statement, params).fetchall()

    async def run(self, statement: str, params: Sequence[object] = ()) -> None:
        self._conn.execute(statement, params)

    async def run_many(self, statement: str, params: Sequence[Sequence[object]]) -> None:
        self._conn.executemany(statement, params)


BUSY_TIMEOUT_MS = 30_000
"""How long a write in a worker thread waits for another connection's write lock."""

SLOW_ON_LOOP_S = 0.010
"""When the median of the last ``SLOW_WINDOW`` writes' statements on the event loop (their
commit aside) is longer than this (pages read from a slow disk), the writes of the next
``SLOW_BACKOFF_S`` go to a worker thread: the loop must not wait on a disk. The median, so
that one write held up by a burst does not."""
SLOW_WINDOW = 16
SLOW_BACKOFF_S = 10.0

CHECKPOINT_EVERY_ROWS = 1000
"""Rows written between the writer's WAL checkpoints: about SQLite's own automatic
threshold (1000 pages; a record writes about four rows of one page or so each)."""


def _log_checkpoint_failure(done: asyncio.Future[None]) -> None:
    # A failed checkpoint loses nothing (the WAL keeps every commit); the next one retries.
    if not done.cancelled() and done.exception() is not None:
        _log.warning("SQLite WAL checkpoint failed: %r", done.exception())


class _Driver:
    def __init__(self, conn: sqlite3.Connection, inline: bool) -> None:
        self._conn = conn
        # An audit's read-only file serves nobody else and a reader never waits for a lock
        # in WAL mode: reading inline spares trading the GIL with a worker thread per batch.
        self._inline = inline
        self._tables = SqlTables(_Cursor(conn))
        self._lock = threading.Lock()
        self._checkpointed_at = conn.total_changes
        self._checkpointing: asyncio.Future[None] | None = None
        self._threaded_until = 0.0
        self._on_loop_s: collections.deque[float] = collections.deque(maxlen=SLOW_WINDOW)
        # Commits of the writes run on the loop: one thread, so they keep their order.
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="expound-sqlite-commit")
        self.writes_on_loop = 0
        """Write transactions run on the event loop (the rest waited in a thread)."""

    def _transaction(
        self, work: Work[T], write: bool, committed: Callable[[T], object] | None
    ) -> T:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            return self._finish(work, committed)

    def _finish(self, work: Work[T], committed: Callable[[T], object] | None) -> T:
        """Runs ``work`` in the open transaction and commits it (rolls back on failure)."""
        try:
            result = _drive(work(self._tables))
        except BaseException:
            self._rollback()
            raise
        return self._commit(result, committed)

    def _commit(self, result: T, committed: Callable[[T], object] | None) -> T:
        """Commits the open transaction (rolls it back if the commit fails), then hands
        ``result`` to ``committed``."""
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        if committed is not None:
            committed(result)
        return result

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _begun_at_once(self) -> bool:
        """Opens a write transaction if nobody holds the write lock; never waits."""
        self._conn.execute("PRAGMA busy_timeout = 0")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            return True
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            return False
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def _work_here(self, work: Work[T]) -> tuple[T] | None:
        """Runs the write's statements on the event loop, its result in a 1-tuple, and
        leaves its transaction open and the lock held for `_commit_held`; None (nothing
        done, the lock not held) when a thread has the connection, another connection
        holds the write lock, or writes here were slow lately (the back-off)."""
        started = time.monotonic()
        if started < self._threaded_until or not self._lock.acquire(blocking=False):
            return None
        try:
            if not self._begun_at_once():
                self._lock.release()
                return None
            self.writes_on_loop += 1
            done = (_drive(work(self._tables)),)
        except BaseException:
            try:
                self._rollback()
            finally:
                self._lock.release()
            raise
        recent = self._on_loop_s
        recent.append(time.monotonic() - started)
        took = statistics.median(recent) if len(recent) == recent.maxlen else 0.0
        if took > SLOW_ON_LOOP_S:
            recent.clear()  # measured afresh after the back-off
            self._threaded_until = time.monotonic() + SLOW_BACKOFF_S
            _log.warning(
                "SQLite writes took %.1f ms (median) on the event loop: writes go through a worker "
                "thread for the next %g s",
                took * 1000,
                SLOW_BACKOFF_S,
            )
        return done

    def _commit_held(self, result: T, committed: Callable[[T], object] | None) -> T:
        """Commits the transaction `_work_here` left open (rolls it back if the commit
        fails), then releases the lock: in the commit thread, so the event loop goes on
        while the disk syncs."""
        try:
            return self._commit(result, committed)
        finally:
            self._lock.release()

    async def run(
        self, work: Work[T], write: bool, committed: Callable[[T], object] | None = None
    ) -> T:
        try:
            if self._inline:
                return self._transaction(work, write, committed)
            if not write:
                return await asyncio.to_thread(self._transaction, work, write, committed)
            held = self._work_here(work)
            if held is None:
                result = await asyncio.to_thread(self._transaction, work, write, committed)
            else:
                result = await self._commit_in_thread(held[0], committed)
            self._checkpoint_if_grown()
            return result
        except sqlite3.Error as exc:
            raise failure(str(exc), isinstance(exc, sqlite3.IntegrityError), write) from exc

    async def _commit_in_thread(self, result: T, committed: Callable[[T], object] | None) -> T:
        try:
            commit = asyncio.get_running_loop().run_in_executor(
                self._committer, self._commit_held, result, committed
            )
        except BaseException:  # not handed over (the executor is shut): nothing is kept
            self._rollback()
            self._lock.release()
            raise
        # The commit finishes even if this caller is cancelled: the lock is released there.
        return await asyncio.shield(commit)

    def _checkpoint_if_grown(self) -> None:
        """Checkpoints the WAL in a worker thread every ``CHECKPOINT_EVERY_ROWS`` rows
        written, one checkpoint at a time."""
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        if self._conn.total_changes - self._checkpointed_at >= CHECKPOINT_EVERY_ROWS:
            self._checkpointed_at = self._conn.total_changes
            self._checkpointing = asyncio.ensure_future(asyncio.to_thread(self._checkpoint))
            self._checkpointing.add_done_callback(_log_checkpoint_failure)

    def _checkpoint(self) -> None:
        with self._lock:
            # PASSIVE: copies what it can without waiting on readers; the WAL is reused
            # from its start once every frame is in the database.
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def aclose(self) -> None:
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
        await asyncio.to_thread(self._committer.shutdown, True)
        await asyncio.to_thread(self._conn.close)


def _wal_mode(conn: sqlite3.Connection) -> None:
    """Turns WAL on. SQLite answers "database is locked" at once, without its busy
    handler, while another connection turns it on for a new file (two processes opening
    one new archive): that is retried until the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    if read_only:
        if not path.exists():
            raise ArchiveUnavailable(f"no archive at {path}")
        uri = f"file:{path}?mode=ro"
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    private_directory(path.parent)
    # Owner-only from the first byte: the database, its WAL and its shared-memory file
    # hold applicants' personal data (SQLite creates the -wal and -shm files with the
    # database file's mode).
    with private_umask():
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        _wal_mode(conn)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    os.chmod(path, 0o600)
    conn.execute("PRAGMA synchronous=FULL")
    # The writer checkpoints the WAL itself, off the commit path (_Driver).
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    # Both read in one statement, one snapshot: another process may be creating the file.
    version, has_tables = conn.execute(
        "SELECT (SELECT user_version FROM pragma_user_version), "
        "(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'records')"
    ).fetchone()
    if has_tables and version != SCHEMA_VERSION:
        conn.close()
        raise ArchiveUnavailable(
            f"{path} holds archive schema version {version}, not {SCHEMA_VERSION}; "
            "it predates holds as log events and per-principal idempotency and cannot be "
            "served: audit it with that version, then start a new archive"
        )
    # The schema and its version in one write transaction: a second process opening the
    # new file at the same moment (two Ray workers, two replicas) saw the tables before
    # the version and refused the archive as "schema version 0".
    conn.executescript(
        f"BEGIN IMMEDIATE;\n{SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
    )
    return conn


async def open_sqlite(
    path: Path,
    signer_for: Callable[[Checkpoint | None], CheckpointPolicy] | None,
    retention: RetentionPolicy,
    max_group: int = DEFAULT_MAX_GROUP,
) -> LogArchive:
    """Opens the archive in the file at ``path``.

    Args:
        path: The database file; created with its schema when missing, unless the archive
            is opened to be read.
        signer_for: As for `expound.archive.engine.open_log`; None opens the file read-only.
        retention: How long payloads are kept.
        max_group: Appends per transaction at most (group commit; 1: each alone).

    Raises:
        ArchiveUnavailable: The file holds another schema, or cannot be read.
    """
    try:
        conn = await asyncio.to_thread(_connect, path, signer_for is None)
    except sqlite3.Error as exc:
        raise ArchiveUnavailable(f"archive {path}: {exc}") from exc
    driver = _Driver(conn, inline=signer_for is None)
    return await open_log(driver, signer_for, retention, max_group)
