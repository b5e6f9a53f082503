"""The SQLite archive: every lookup searches by key; writes run on the loop when they can
and checkpoint the WAL themselves."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive import sqlite as sqlite_module
from expound.archive.adapter import Query
from expound.archive.engine import LogArchive
from expound.archive.retention import RetentionPolicy
from expound.archive.sql import Row, SqlTables
from expound.archive.sqlite import open_sqlite
from expound.archive.store import RecordFilter
from expound.errors import ArchiveUnavailable
from tests.support.archive_backends import fixed_signer
from tests.support.archive_contract import new_record


class Recorder:
    """A cursor that only records the statements the shared SQL sends."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Sequence[object]]] = []

    async def rows(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        self.statements.append((statement, params))
        return [(0,)] if statement.startswith("SELECT coalesce") else []

    async def run(self, statement: str, params: Sequence[object] = ()) -> None:
        self.statements.append((statement, params))

    async def run_many(self, statement: str, params: Sequence[Sequence[object]]) -> None:
        self.statements.append((statement, params[0]))


async def test_proof_and_lookup_queries_search_by_key_never_scan(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite3"
    store = await open_sqlite(path, fixed_signer(Ed25519PrivateKey.generate()), RetentionPolicy())
    await store.aclose()
    recorder = Recorder()
    tables = SqlTables(recorder)
    await tables.nodes({(0, 3), (1, 0), (2, 1), (3, 0)})
    await tables.checkpoint(8)
    await tables.log_rows(1000, 10)
    await tables.select(Query(record_id="r"))
    await tables.select(Query(idempotency_key="k", principal="p"))
    await tables.select(Query(listing=RecordFilter(model_id="m"), below=10, limit=5))
    await tables.select(Query(listing=RecordFilter(principal="p"), below=10, limit=5))
    await tables.select(Query(about_seq=3))
    await tables.active_hold(3)
    await tables.access_rows(10, 5, "")
    await tables.access_rows(10, 5, "r")
    with sqlite3.connect(path) as conn:
        for statement, params in recorder.statements:
            plan = " ".join(
                row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", params)
            )
            assert "SCAN" not in plan, (statement, plan)


async def test_an_archive_of_an_earlier_schema_is_refused_not_served(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite3"
    with sqlite3.connect(path) as conn:  # what schema version 2 left: no principal column
        conn.execute("CREATE TABLE records (seq INTEGER PRIMARY KEY, idempotency_key TEXT UNIQUE)")
        conn.execute("PRAGMA user_version = 2")
    with pytest.raises(ArchiveUnavailable, match="schema version 2, not 3"):
        await open_sqlite(path, fixed_signer(Ed25519PrivateKey.generate()), RetentionPolicy())


async def _open(path: Path) -> LogArchive:
    return await open_sqlite(path, fixed_signer(Ed25519PrivateKey.generate()), RetentionPolicy())


def _driver(store: LogArchive) -> sqlite_module._Driver:
    driver = store._driver
    assert isinstance(driver, sqlite_module._Driver)
    return driver


@pytest.fixture
def quick_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The slow-write back-off at test scale: 3 writes over 20 ms, for 0.5 s."""
    monkeypatch.setattr(sqlite_module, "SLOW_WINDOW", 3)
    monkeypatch.setattr(sqlite_module, "SLOW_ON_LOOP_S", 0.02)
    monkeypatch.setattr(sqlite_module, "SLOW_BACKOFF_S", 0.5)


async def test_a_write_runs_on_the_event_loop_when_nobody_else_holds_the_lock(
    tmp_path: Path,
) -> None:
    # A hand-off to a thread per group costs more than the transaction under load: with
    # the lock free, the write is done on the loop's own thread.
    store = await _open(tmp_path / "archive.sqlite3")
    try:
        driver = _driver(store)

        async def where(tables: Any) -> int:
            return threading.get_ident()

        assert await driver.run(where, write=True) == threading.get_ident()
        stored = await store.append(new_record(0))
        assert driver.writes_on_loop == 2
        assert (await store.get(stored.record_id)).record_id == stored.record_id
    finally:
        await store.aclose()


async def test_a_write_waits_in_a_thread_for_another_connection_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "archive.sqlite3"
    store = await _open(path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
        append = asyncio.create_task(store.append(new_record(0)))
        ticks = 0
        for _ in range(20):  # the loop keeps running while the append waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not append.done()
        other.execute("COMMIT")
        stored = await asyncio.wait_for(append, 10)
        assert ticks == 20
        assert stored.seq == 0
        assert _driver(store).writes_on_loop == 0
        assert (await store.get(stored.record_id)).record_id == stored.record_id
    finally:
        other.close()
        await store.aclose()


async def test_the_writer_checkpoints_the_wal_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Automatic checkpoints are off (they would run inside a commit on the loop): without
    # the writer's own, the database file would never take in what the WAL holds.
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY_ROWS", 20)
    path = tmp_path / "archive.sqlite3"
    store = await _open(path)
    try:
        empty = path.stat().st_size
        for n in range(12):
            await store.append(new_record(n))
        checkpointing = _driver(store)._checkpointing
        assert checkpointing is not None
        await checkpointing
        assert path.stat().st_size > empty
    finally:
        await store.aclose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM records").fetchone() == (12,)


def _sleeping(seconds: float) -> Callable[[Any], Coroutine[Any, Any, int]]:
    async def work(tables: Any) -> int:
        time.sleep(seconds)  # noqa: ASYNC251 (blocks, as a slow fsync in the transaction would)
        return threading.get_ident()

    return work


@pytest.mark.usefixtures("quick_back_off")
async def test_slow_writes_on_the_loop_send_the_next_writes_to_a_thread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A slow disk must not hold the event loop: once the writes there are slow (median of
    # the last few), the writes of the back-off period wait in a thread instead.
    store = await _open(tmp_path / "archive.sqlite3")
    try:
        driver = _driver(store)
        for _ in range(3):
            assert await driver.run(_sleeping(0.03), write=True) == threading.get_ident()
        assert "writes go through a worker thread" in caplog.text
        stored = await store.append(new_record(0))
        assert driver.writes_on_loop == 3
        assert (await store.get(stored.record_id)).record_id == stored.record_id

        await asyncio.sleep(0.6)  # the back-off is over: back on the loop
        assert await driver.run(_sleeping(0), write=True) == threading.get_ident()
        assert driver.writes_on_loop == 4
    finally:
        await store.aclose()


@pytest.mark.usefixtures("quick_back_off")
async def test_one_slow_write_among_quick_ones_stays_on_the_loop(tmp_path: Path) -> None:
    # A burst can hold up one write; only a slow disk makes them slow as a rule.
    store = await _open(tmp_path / "archive.sqlite3")
    try:
        driver = _driver(store)
        for seconds in (0, 0.03, 0, 0, 0.03, 0):
            assert await driver.run(_sleeping(seconds), write=True) == threading.get_ident()
        assert driver.writes_on_loop == 6
    finally:
        await store.aclose()


class _SlowCommit:
    """The driver's connection with a disk that takes ``seconds`` to sync each COMMIT (or
    fails it with ``error``); records the thread each COMMIT ran in."""

    def __init__(
        self, conn: sqlite3.Connection, seconds: float, error: sqlite3.Error | None = None
    ) -> None:
        self._conn = conn
        self._seconds = seconds
        self._error = error
        self.commit_threads: list[int] = []

    def execute(self, statement: str, *params: Any) -> sqlite3.Cursor:
        if statement == "COMMIT":
            self.commit_threads.append(threading.get_ident())
            time.sleep(self._seconds)
            if self._error is not None:
                raise self._error
        return self._conn.execute(statement, *params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _slow_commits(
    store: LogArchive, seconds: float, error: sqlite3.Error | None = None
) -> _SlowCommit:
    driver = _driver(store)
    slow = _SlowCommit(driver._conn, seconds, error)
    driver._conn = slow  # type: ignore[assignment]
    return slow


async def test_the_loop_goes_on_while_a_write_on_it_is_committed(tmp_path: Path) -> None:
    # The statements run on the loop, but the COMMIT (SQLite's fsync under
    # synchronous=FULL, milliseconds on a real disk) runs in the commit thread: the loop
    # serves other calls meanwhile, and the appends they make form the next group.
    store = await _open(tmp_path / "archive.sqlite3")
    try:
        slow = _slow_commits(store, 0.2)
        append = asyncio.create_task(store.append(new_record(0)))
        ticks = 0
        while not append.done():
            await asyncio.sleep(0.01)
            ticks += 1
        stored = await append
        assert ticks >= 10  # the loop ran on through the 0.2 s commit
        assert _driver(store).writes_on_loop == 1
        assert slow.commit_threads and threading.get_ident() not in slow.commit_threads
        assert (await store.get(stored.record_id)).record_id == stored.record_id
    finally:
        await store.aclose()


async def test_a_caller_cancelled_during_the_commit_leaves_its_record_committed(
    tmp_path: Path,
) -> None:
    # A commit handed over is seen through: the record is in the log, and the lock is free
    # for the next write (a caller's deadline can cut its wait, not the transaction).
    store = await _open(tmp_path / "archive.sqlite3")
    try:
        _slow_commits(store, 0.2)
        first = new_record(0)
        append = asyncio.create_task(store.append(first))
        await asyncio.sleep(0.05)
        append.cancel()
        with pytest.raises(asyncio.CancelledError):
            await append
        second = await asyncio.wait_for(store.append(new_record(1)), 10)
        assert second.seq == 1
        assert (await store.get(first.record_id)).seq == 0
    finally:
        await store.aclose()


async def test_a_failed_commit_is_rolled_back_and_frees_the_lock(tmp_path: Path) -> None:
    store = await _open(tmp_path / "archive.sqlite3")
    try:
        slow = _slow_commits(store, 0, sqlite3.OperationalError("disk I/O error"))
        with pytest.raises(ArchiveUnavailable, match="could not be committed: disk I/O error"):
            await store.append(new_record(0))
        slow._error = None
        stored = await asyncio.wait_for(store.append(new_record(1)), 10)
        assert stored.seq == 0  # nothing of the failed write was kept
        assert (await store.head()).size == 1
    finally:
        await store.aclose()


def _open_new_archive(path: str, barrier: Any, outcomes: Any) -> None:
    from expound.archive.sqlite import _connect

    barrier.wait()
    try:
        _connect(Path(path), False).close()
        outcomes.put("ok")
    except Exception as error:  # reported to the test, which names it
        outcomes.put(repr(error))


def test_processes_opening_one_new_archive_at_once_all_open_it(tmp_path: Path) -> None:
    # Two Ray workers opening a new archive together: one saw the tables before their
    # schema version ("holds archive schema version 0") or was refused "database is
    # locked" while the other turned WAL on. Four processes, twelve new files.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    outcomes = []
    for attempt in range(12):
        barrier, queue = context.Barrier(4), context.Queue()
        path = str(tmp_path / f"new-{attempt}" / "archive.sqlite3")
        processes = [
            context.Process(target=_open_new_archive, args=(path, barrier, queue)) for _ in range(4)
        ]
        for process in processes:
            process.start()
        outcomes += [queue.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
    assert [o for o in outcomes if o != "ok"] == []
