"""The shared SQL on SQLite: every lookup a proof or a read makes searches by key."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive.adapter import Query
from expound.archive.retention import RetentionPolicy
from expound.archive.sql import Row, SqlTables
from expound.archive.sqlite import open_sqlite
from expound.archive.store import RecordFilter
from expound.errors import ArchiveUnavailable
from tests.support.archive_backends import fixed_signer


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
