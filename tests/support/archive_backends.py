"""Both archive stores behind one interface for tests, each on a fresh database.

PostgreSQL: a local server on its Unix socket (scripts/ensure_postgres.sh installs and
starts one when none answers; ``make test`` runs it first, and the first test that needs it
runs it too) and a throwaway database per test from pytest-postgresql.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pytest_postgresql import factories

from expound.archive.audit import AuditReport, audit_log, audit_stream
from expound.archive.checkpoint import Checkpoint
from expound.archive.postgres import PostgresArchive
from expound.archive.postgres import read_log as read_postgres_log
from expound.archive.retention import RetentionPolicy
from expound.archive.signing import CheckpointPolicy
from expound.archive.sqlite import SqliteArchive
from expound.archive.sqlite import read_log as read_sqlite_log
from expound.archive.store import ArchiveStore

ROOT = Path(__file__).resolve().parents[2]
SOCKET_DIR = os.environ.get("EXPOUND_PG_SOCKET_DIR", "/var/run/postgresql")


def _postgres_reachable() -> bool:
    try:
        psycopg.connect(host=SOCKET_DIR, dbname="postgres", connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def ensure_postgres() -> None:
    """Starts the local PostgreSQL (installing it if needed) when none answers."""
    if not _postgres_reachable():
        subprocess.run([str(ROOT / "scripts" / "ensure_postgres.sh")], check=True, timeout=600)
    if not _postgres_reachable():
        pytest.fail(f"no PostgreSQL on {SOCKET_DIR}; run scripts/ensure_postgres.sh as root")


@pytest.fixture(scope="session")
def postgres_server() -> None:
    ensure_postgres()


postgresql_proc = factories.postgresql_noproc(
    host=SOCKET_DIR,
    port=5432,
    user=os.environ.get("USER", "root"),
    dbname=f"expound_test_{os.getpid()}",
    depends_on=None,
)
postgresql = factories.postgresql("postgresql_proc")

SignerFor = Callable[[Checkpoint | None], CheckpointPolicy]


def fixed_signer(
    key: Ed25519PrivateKey, every_records: int = 4, every_seconds: float = 3600.0
) -> SignerFor:
    def build(latest: Checkpoint | None) -> CheckpointPolicy:
        policy = CheckpointPolicy("test-log", key, every_records, every_seconds)
        policy.check_owned(latest)
        return policy

    return build


@dataclass
class Backend:
    """One store kind on one fresh database: opens stores, runs raw SQL, audits."""

    kind: str
    sqlite_path: Path | None = None
    dsn: str = ""

    async def open(
        self, signer_for: SignerFor, retention: RetentionPolicy | None = None
    ) -> ArchiveStore:
        policy = retention or RetentionPolicy()
        if self.kind == "sqlite":
            assert self.sqlite_path is not None
            return SqliteArchive(self.sqlite_path, signer_for, policy)
        return await PostgresArchive.open(self.dsn, signer_for, policy)

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Runs one statement outside the store, as a tamperer with database access would."""
        if self.kind == "sqlite":
            assert self.sqlite_path is not None
            with sqlite3.connect(self.sqlite_path) as conn:
                return conn.execute(statement, params).fetchall()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(statement.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []

    def drop_guards(self) -> None:
        """Removes the append-only triggers, as a tamperer with owner rights could."""
        if self.kind == "sqlite":
            for (name,) in self.sql("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
                self.sql(f"DROP TRIGGER {name}")
        else:
            for table in ("records", "payloads", "nodes", "checkpoints"):
                self.sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for table in ("payloads", "holds"):
                self.sql(f"ALTER TABLE {table} DROP CONSTRAINT {table}_seq_fkey")

    async def audit(
        self, public_key: Any = None, published: Sequence[Checkpoint] = ()
    ) -> AuditReport:
        if self.kind == "sqlite":
            assert self.sqlite_path is not None
            rows, checkpoints = read_sqlite_log(self.sqlite_path)
            return audit_log(rows, [*checkpoints, *published], public_key)
        async with await psycopg.AsyncConnection.connect(self.dsn) as conn:
            stream, checkpoints = await read_postgres_log(conn)
            return await audit_stream(stream, [*checkpoints, *published], public_key)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", sqlite_path=tmp_path / "archive.sqlite3")
        return
    request.getfixturevalue("postgres_server")
    conn: psycopg.Connection[Any] = request.getfixturevalue("postgresql")
    info = conn.info
    yield Backend(
        "postgres", dsn=f"host={info.host} port={info.port} user={info.user} dbname={info.dbname}"
    )
