"""The multi-instance archive: PostgreSQL through psycopg 3 (async).

Same tables as `expound.archive.sqlite`, same engine (`expound.archive.engine`). Many
service instances may share one database: every write transaction first takes a
transaction-scoped advisory lock on the log, so there is one writer at a time, and commits
with ``synchronous_commit=on`` before the answer goes out. Triggers refuse UPDATE, DELETE
and TRUNCATE of entries, nodes and checkpoints; a payload can be deleted only past its
retain-until time and while not held.

Roles: `install_schema` (``expound archive init``, run with the owner's DSN) creates the
tables and grants the service role INSERT and SELECT only, plus the one owner's function
that removes a payload past retention and not held. The service never installs the schema:
it connects as the service role, which cannot alter, disable or bypass what the owner
installed; holds, releases and expiry are its RPCs, so no admin needs database rights.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from expound.archive.adapter import Work, failure
from expound.archive.checkpoint import Checkpoint
from expound.archive.engine import LogArchive, open_log
from expound.archive.grouping import DEFAULT_MAX_GROUP
from expound.archive.retention import RetentionPolicy
from expound.archive.signing import CheckpointPolicy
from expound.archive.sql import TABLES, Row, SqlTables
from expound.errors import ArchiveUnavailable

T = TypeVar("T")
log = logging.getLogger("expound.archive")

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq bigint PRIMARY KEY CHECK (seq >= 0),
    kind text NOT NULL CHECK (kind IN ('record', 'tombstone', 'hold', 'release')),
    record_id text NOT NULL UNIQUE,
    model_id text NOT NULL,
    decision_id text NOT NULL,
    principal text NOT NULL,
    idempotency_key text,
    request_sha256 text NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    decision text NOT NULL,
    sha256 text NOT NULL,
    leaf_hash bytea NOT NULL CHECK (length(leaf_hash) = 32),
    root_after bytea NOT NULL CHECK (length(root_after) = 32),
    retain_until text COLLATE "C" NOT NULL,
    target_seq bigint REFERENCES records (seq),
    CONSTRAINT records_idempotency_key UNIQUE (principal, idempotency_key)
);
CREATE INDEX IF NOT EXISTS records_model_seq ON records (model_id, seq);
CREATE INDEX IF NOT EXISTS records_decision ON records (decision_id);
CREATE INDEX IF NOT EXISTS records_principal_seq ON records (principal, seq);
CREATE INDEX IF NOT EXISTS records_created ON records (created_at);
CREATE INDEX IF NOT EXISTS records_retain ON records (retain_until);
CREATE INDEX IF NOT EXISTS records_target ON records (target_seq) WHERE target_seq IS NOT NULL;
CREATE TABLE IF NOT EXISTS payloads (
    seq bigint PRIMARY KEY REFERENCES records (seq),
    canonical bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
    level integer NOT NULL CHECK (level > 0),
    idx bigint NOT NULL CHECK (idx >= 0),
    hash bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size bigint PRIMARY KEY CHECK (size > 0),
    log_id text NOT NULL,
    root_hash bytea NOT NULL,
    timestamp text NOT NULL,
    signature bytea NOT NULL,
    key_id bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS access_log (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at text NOT NULL,
    principal text NOT NULL,
    rpc text NOT NULL,
    request_id text NOT NULL
);
CREATE TABLE IF NOT EXISTS access_records (
    access_seq bigint NOT NULL REFERENCES access_log (seq),
    position integer NOT NULL CHECK (position >= 0),
    record_id text NOT NULL,
    PRIMARY KEY (access_seq, position)
);
CREATE INDEX IF NOT EXISTS access_records_record ON access_records (record_id, access_seq);
CREATE OR REPLACE FUNCTION expound_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'records are append-only' USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE OR REPLACE FUNCTION expound_payload_retained() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT kind <> 'record'
            OR retain_until > to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        FROM records WHERE seq = OLD.seq)
        OR EXISTS (SELECT 1 FROM records h WHERE h.kind = 'hold' AND h.target_seq = OLD.seq
            AND NOT EXISTS (SELECT 1 FROM records x WHERE x.kind = 'release'
                            AND x.target_seq = h.seq)) THEN
        RAISE EXCEPTION 'payload is retained or on legal hold'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN OLD;
END $$;
-- The one way the service role removes a payload: as the owner, through the guard above.
-- Its search path is the one the schema was installed with, never the caller's.
CREATE OR REPLACE FUNCTION expound_remove_payload(entry bigint) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    DELETE FROM payloads WHERE seq = entry;
$$;
REVOKE ALL ON FUNCTION expound_remove_payload(bigint) FROM PUBLIC;
CREATE OR REPLACE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION expound_append_only();
CREATE OR REPLACE TRIGGER nodes_append_only BEFORE UPDATE OR DELETE ON nodes
    FOR EACH ROW EXECUTE FUNCTION expound_append_only();
CREATE OR REPLACE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION expound_append_only();
CREATE OR REPLACE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION expound_append_only();
CREATE OR REPLACE TRIGGER access_records_append_only BEFORE UPDATE OR DELETE ON access_records
    FOR EACH ROW EXECUTE FUNCTION expound_append_only();
CREATE OR REPLACE TRIGGER payloads_no_update BEFORE UPDATE ON payloads
    FOR EACH ROW EXECUTE FUNCTION expound_append_only();
CREATE OR REPLACE TRIGGER payloads_retained BEFORE DELETE ON payloads
    FOR EACH ROW EXECUTE FUNCTION expound_payload_retained();
CREATE OR REPLACE TRIGGER records_no_truncate BEFORE TRUNCATE ON records
    FOR EACH STATEMENT EXECUTE FUNCTION expound_append_only();
CREATE OR REPLACE TRIGGER payloads_no_truncate BEFORE TRUNCATE ON payloads
    FOR EACH STATEMENT EXECUTE FUNCTION expound_append_only();
CREATE OR REPLACE TRIGGER nodes_no_truncate BEFORE TRUNCATE ON nodes
    FOR EACH STATEMENT EXECUTE FUNCTION expound_append_only();
CREATE OR REPLACE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION expound_append_only();
CREATE OR REPLACE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION expound_append_only();
CREATE OR REPLACE TRIGGER access_records_no_truncate BEFORE TRUNCATE ON access_records
    FOR EACH STATEMENT EXECUTE FUNCTION expound_append_only();
COMMENT ON TABLE records IS 'expound archive schema 3';
"""

Conn = psycopg.AsyncConnection[tuple[Any, ...]]

# One log per database, so one lock key: a stable signed 64-bit advisory-lock key.
LOCK_KEY = int.from_bytes(
    uuid.uuid5(uuid.NAMESPACE_URL, "expound:archive-log").bytes[:8], "big", signed=True
)
PRIVILEGED = (
    "SELECT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = "
    "'records'::regclass), 'USAGE') OR has_table_privilege('records', 'UPDATE') "
    "OR has_table_privilege('payloads', 'DELETE'), current_user"
)
"""Whether the connected role owns the archive or may change it beyond INSERT and SELECT."""
OVERPRIVILEGED = (
    "the archive is connected as %s, which owns the schema or may UPDATE or DELETE it: "
    "connect as the INSERT and SELECT role that `expound archive init` granted"
)
SCHEMA_VERSION = "expound archive schema 3"
"""The comment `install_schema` puts on the records table; the service opens only this one."""
VERSION_QUERY = "SELECT obj_description(to_regclass('records'), 'pg_class')"
OLD_SCHEMA = (
    "this database holds an archive of an earlier schema (found {found!r}, not "
    f"{SCHEMA_VERSION!r}), before holds were log events and idempotency keys per principal; "
    "it cannot be served: audit it with the version that wrote it, then start a new archive"
)
NOT_INSTALLED = (
    "the archive schema is not installed in this database: run `expound archive init` "
    "with the owner's DSN (EXPOUND_ARCHIVE_OWNER_DSN) first"
)


async def install_schema(conn: Conn, service_role: str | None = None) -> None:
    """Creates the archive's tables and triggers (idempotent) and grants the service role.

    Run as the schema's owner. The service role gets SELECT and INSERT on every table and
    nothing else; it removes an expired payload only through `expound_remove_payload`,
    which runs as the owner behind the retention and legal-hold guard. Holds, releases and
    expiry are the service's RPCs, so no other role needs more.

    Args:
        conn: A connection of the owner, outside a transaction.
        service_role: The role the service connects as, if any.

    Raises:
        ArchiveUnavailable: The database holds an archive of an earlier schema version.
    """
    found = await (await conn.execute("SELECT to_regclass('records')")).fetchone()
    if found is not None and found[0] is not None:
        version = await (await conn.execute(VERSION_QUERY)).fetchone()
        if version is None or version[0] != SCHEMA_VERSION:
            raise ArchiveUnavailable(OLD_SCHEMA.format(found=version[0] if version else None))
    await conn.execute(SCHEMA)
    if service_role:
        role = sql.Identifier(service_role)
        tables = sql.SQL(", ").join(sql.Identifier(name) for name in TABLES)
        await conn.execute(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(tables, role))
        await conn.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION expound_remove_payload(bigint) TO {}").format(role)
        )


async def ensure_service_role(conn: Conn, role: str) -> bool:
    """Creates the service's login role when it does not exist yet; True if created.

    The role gets no password and no privileges here: `install_schema` grants it INSERT and
    SELECT, and the operator gives it a password or a client certificate.

    Raises:
        ArchiveUnavailable: The owner may not create roles (then create it as a superuser).
    """
    exists = await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    if await exists.fetchone() is not None:
        return False
    try:
        await conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
                sql.Identifier(role)
            )
        )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ArchiveUnavailable(
            f"the schema owner may not create the role {role!r}: create it as a superuser "
            "(CREATE ROLE ... LOGIN), then run init again"
        ) from exc
    return True


class _Tables(SqlTables):
    REMOVE_PAYLOAD = "SELECT expound_remove_payload(?)"


class _Cursor:
    """`expound.archive.sql.Cursor` over one connection (``?`` marks become ``%s``)."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    async def rows(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        cursor = await self._conn.execute(statement.replace("?", "%s"), params)
        return await cursor.fetchall()

    async def run(self, statement: str, params: Sequence[object] = ()) -> None:
        await self._conn.execute(statement.replace("?", "%s"), params)

    async def run_many(self, statement: str, params: Sequence[Sequence[object]]) -> None:
        async with self._conn.cursor() as cursor:
            await cursor.executemany(statement.replace("?", "%s"), params)


class _Driver:
    def __init__(self, pool: AsyncConnectionPool[Conn]) -> None:
        self._pool = pool

    async def run(
        self, work: Work[T], write: bool, committed: Callable[[T], object] | None = None
    ) -> T:
        try:
            async with self._pool.connection() as conn:
                if not write:  # autocommit: a read costs no BEGIN and COMMIT round trips
                    return await work(_Tables(_Cursor(conn)))
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                    result = await work(_Tables(_Cursor(conn)))
        except psycopg.Error as exc:
            integrity = isinstance(exc, psycopg.IntegrityError)
            name = getattr(exc.diag, "constraint_name", None) or ""
            raise failure(f"{exc} {name}".strip(), integrity, write) from exc
        if committed is not None:
            committed(result)
        return result

    async def aclose(self) -> None:
        await self._pool.close()


async def open_postgres(
    dsn: str,
    signer_for: Callable[[Checkpoint | None], CheckpointPolicy] | None,
    retention: RetentionPolicy,
    max_connections: int = 8,
    max_group: int = DEFAULT_MAX_GROUP,
) -> LogArchive:
    """Connects to an archive that `install_schema` set up.

    Args:
        dsn: libpq connection string or URL, normally of the service role.
        signer_for: As for `expound.archive.engine.open_log` (None: read only).
        retention: How long payloads are kept.
        max_connections: Pool size.
        max_group: Appends per transaction at most (group commit; 1: each alone).

    Raises:
        ArchiveUnavailable: If the database cannot be reached or has no archive schema (or
            one of an earlier version).
    """
    version: tuple[Any, ...] | None = None

    async def configure(conn: Conn) -> None:
        await conn.set_autocommit(True)
        await conn.execute("SET synchronous_commit = on")

    pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
        dsn, min_size=1, max_size=max_connections, open=False, configure=configure
    )
    try:
        await pool.open(wait=True, timeout=30)
        async with pool.connection() as conn:
            found = await (await conn.execute("SELECT to_regclass('records')")).fetchone()
            if found is not None and found[0] is not None:
                version = await (await conn.execute(VERSION_QUERY)).fetchone()
                privileged = await (await conn.execute(PRIVILEGED)).fetchone()
                if privileged is not None and privileged[0]:
                    log.warning(OVERPRIVILEGED, privileged[1])
    except psycopg.Error as exc:
        await pool.close()
        raise ArchiveUnavailable(f"archive database: {exc}") from exc
    except BaseException:
        await pool.close()
        raise
    if found is None or found[0] is None:
        await pool.close()
        raise ArchiveUnavailable(NOT_INSTALLED)
    if version is None or version[0] != SCHEMA_VERSION:
        await pool.close()
        raise ArchiveUnavailable(OLD_SCHEMA.format(found=version[0] if version else None))
    return await open_log(_Driver(pool), signer_for, retention, max_group)
