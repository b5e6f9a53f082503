"""Every archive store behind one interface for tests, each on a fresh log.

Memory and SQLite serve the unit tier; PostgreSQL the integration tier: a local server on
its Unix socket (scripts/ensure_postgres.sh installs and starts one when none answers),
a throwaway database per test from pytest-postgresql, the schema installed by its owner as
``expound archive init`` does, and the store connected as the service role (INSERT and
SELECT only, expiry through the owner's guarded function) over loopback TCP.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pytest_postgresql import factories

from expound.archive.audit import AuditReport, audit
from expound.archive.checkpoint import Checkpoint
from expound.archive.engine import LogArchive
from expound.archive.grouping import DEFAULT_MAX_GROUP
from expound.archive.memory import MemoryDriver, open_memory
from expound.archive.postgres import install_schema, open_postgres
from expound.archive.retention import RetentionPolicy
from expound.archive.signing import CheckpointPolicy
from expound.archive.sqlite import SCHEMA as SQLITE_SCHEMA
from expound.archive.sqlite import open_sqlite

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
    """One store kind on one fresh log: opens stores, runs raw SQL, audits.

    For PostgreSQL, ``dsn`` is the service role's and ``owner_dsn`` the schema owner's (raw
    SQL runs as the owner, as a tamperer with owner rights would).
    """

    kind: str
    sqlite_path: Path | None = None
    dsn: str = ""
    owner_dsn: str = ""
    memory: MemoryDriver = field(default_factory=MemoryDriver)

    async def open(
        self,
        signer_for: SignerFor | None,
        retention: RetentionPolicy | None = None,
        max_group: int = DEFAULT_MAX_GROUP,
    ) -> LogArchive:
        """A store over this backend's log (``max_group`` 1: no group commit)."""
        policy = retention or RetentionPolicy()
        if self.kind == "memory":
            return await open_memory(signer_for, policy, self.memory, max_group)
        if self.kind == "sqlite":
            assert self.sqlite_path is not None
            return await open_sqlite(self.sqlite_path, signer_for, policy, max_group)
        return await open_postgres(self.dsn, signer_for, policy, max_group=max_group)

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Runs one statement outside the store, as a tamperer with database access would."""
        if self.kind == "sqlite":
            assert self.sqlite_path is not None
            with sqlite3.connect(self.sqlite_path) as conn:
                return conn.execute(statement, params).fetchall()
        assert self.kind == "postgres", "the memory store has no SQL"
        with psycopg.connect(self.owner_dsn, autocommit=True) as conn:
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
            self.sql("ALTER TABLE payloads DROP CONSTRAINT payloads_seq_fkey")
            self.sql("ALTER TABLE records DROP CONSTRAINT records_target_seq_fkey")

    def restore_guards(self) -> None:
        """Puts the triggers back, as a tamperer covering their tracks would."""
        if self.kind == "sqlite":
            assert self.sqlite_path is not None
            with sqlite3.connect(self.sqlite_path) as conn:
                conn.executescript(SQLITE_SCHEMA)
        else:
            for table in ("records", "payloads", "nodes", "checkpoints"):
                self.sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")

    async def audit(
        self, public_key: Any = None, published: Sequence[Checkpoint] = ()
    ) -> AuditReport:
        store = await self.open(None)
        try:
            log = await store.read_log()
            log.checkpoints.extend(published)
            return await audit(log, public_key)
        finally:
            await store.aclose()


@dataclass(frozen=True)
class PostgresRoles:
    """A fresh database with an owner and two login roles, no schema yet.

    ``init`` grants the service role; ``other`` is a login role it grants nothing.
    """

    owner_dsn: str
    service: str
    other: str
    service_dsn: str
    other_dsn: str


@pytest.fixture
def postgres_roles(
    postgres_server: None, postgresql: psycopg.Connection[Any]
) -> Iterator[PostgresRoles]:
    """Roles for one test, dropped after it; they log in over loopback TCP."""
    info = postgresql.info
    owner = f"host={info.host} port={info.port} user={info.user} dbname={info.dbname}"
    suffix = uuid.uuid4().hex[:8]
    service, other = f"expound_service_{suffix}", f"expound_other_{suffix}"
    password = uuid.uuid4().hex
    with psycopg.connect(owner, autocommit=True) as admin:
        for role in (service, other):
            admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")

    def dsn(role: str) -> str:
        return (
            f"host=127.0.0.1 port={info.port} user={role} password={password} dbname={info.dbname}"
        )

    try:
        yield PostgresRoles(owner, service, other, dsn(service), dsn(other))
    finally:
        with psycopg.connect(owner, autocommit=True) as admin:
            for role in (service, other):
                admin.execute(f"DROP OWNED BY {role}")
                admin.execute(f"DROP ROLE {role}")


async def _postgres_backend(request: pytest.FixtureRequest) -> Backend:
    roles: PostgresRoles = request.getfixturevalue("postgres_roles")
    async with await psycopg.AsyncConnection.connect(roles.owner_dsn, autocommit=True) as init:
        await install_schema(init, roles.service)
    return Backend("postgres", dsn=roles.service_dsn, owner_dsn=roles.owner_dsn)


def backend_fixture(*kinds: str) -> Any:
    """A ``backend`` fixture over the given store kinds, for one tier's test module."""

    @pytest.fixture(params=kinds)
    async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
        if request.param == "postgres":
            yield await _postgres_backend(request)
            return
        yield Backend(request.param, sqlite_path=tmp_path / "archive.sqlite3")

    return backend
