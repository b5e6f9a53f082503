"""The multi-instance archive: PostgreSQL through psycopg 3 (async), as a Merkle log.

Same contract and same tables as `expound.archive.sqlite`. Many service instances may share
one database: every write transaction first takes a transaction-scoped advisory lock on the
log, so there is one writer at a time per log, and commits with ``synchronous_commit=on``
before the answer goes out. Triggers refuse UPDATE, DELETE and TRUNCATE of entries, nodes
and checkpoints; a payload can be deleted only past its retain-until time and while not
held. `install_schema` creates the tables and grants the service's role INSERT and SELECT
only, and a retention role DELETE on payloads and holds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

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

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq bigint PRIMARY KEY CHECK (seq >= 0),
    kind text NOT NULL CHECK (kind IN ('record', 'tombstone')),
    record_id text NOT NULL UNIQUE,
    model_id text NOT NULL,
    decision_id text NOT NULL,
    idempotency_key text UNIQUE,
    request_sha256 text NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    decision text NOT NULL,
    sha256 text NOT NULL,
    leaf_hash bytea NOT NULL CHECK (length(leaf_hash) = 32),
    root_after bytea NOT NULL CHECK (length(root_after) = 32),
    retain_until text COLLATE "C" NOT NULL
);
CREATE INDEX IF NOT EXISTS records_model_seq ON records (model_id, seq);
CREATE INDEX IF NOT EXISTS records_decision ON records (decision_id);
CREATE INDEX IF NOT EXISTS records_created ON records (created_at);
CREATE INDEX IF NOT EXISTS records_retain ON records (retain_until);
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
    signature bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS holds (
    seq bigint PRIMARY KEY REFERENCES records (seq),
    reason text NOT NULL,
    placed_at text NOT NULL
);
CREATE OR REPLACE FUNCTION expound_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'records are append-only' USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE OR REPLACE FUNCTION expound_payload_retained() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT retain_until FROM records WHERE seq = OLD.seq)
            > to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        OR EXISTS (SELECT 1 FROM holds WHERE seq = OLD.seq) THEN
        RAISE EXCEPTION 'payload is retained or on legal hold'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN OLD;
END $$;
CREATE OR REPLACE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION expound_append_only();
CREATE OR REPLACE TRIGGER nodes_append_only BEFORE UPDATE OR DELETE ON nodes
    FOR EACH ROW EXECUTE FUNCTION expound_append_only();
CREATE OR REPLACE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
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
"""

TABLES = ("records", "payloads", "nodes", "checkpoints", "holds")
COLUMNS = (
    "r.seq, r.record_id, r.model_id, r.decision_id, r.idempotency_key, r.request_sha256, "
    "r.created_at, r.decision, r.sha256, p.canonical, r.leaf_hash, r.kind, r.retain_until, "
    "h.seq IS NOT NULL"
)
FROM = "FROM records r LEFT JOIN payloads p ON p.seq = r.seq LEFT JOIN holds h ON h.seq = r.seq"
INSERT_RECORD = (
    "INSERT INTO records (seq, kind, record_id, model_id, decision_id, idempotency_key, "
    "request_sha256, created_at, decision, sha256, leaf_hash, root_after, retain_until) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
CHECKPOINT_COLUMNS = "log_id, size, root_hash, timestamp, signature"
NODES = (
    "SELECT 0, seq, leaf_hash FROM records WHERE seq = ANY(%s) UNION ALL "
    "SELECT n.level, n.idx, n.hash FROM nodes n "
    "JOIN unnest(%s::integer[], %s::bigint[]) AS k (level, idx) "
    "ON n.level = k.level AND n.idx = k.idx"
)
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50

Conn = psycopg.AsyncConnection[tuple[Any, ...]]


def _row_to_record(row: Sequence[Any]) -> StoredRecord:
    (seq, record_id, model_id, decision_id, key, request_sha256, created, decision, sha) = row[:9]
    body, leaf, kind, retain_until, held = row[9:]
    return StoredRecord(
        seq=int(seq),
        record_id=record_id,
        model_id=model_id,
        decision_id=decision_id,
        idempotency_key=key or "",
        request_sha256=request_sha256,
        created_at=created,
        decision=decision,
        sha256=sha,
        canonical=bytes(body) if body is not None else b"",
        leaf_hash=bytes(leaf),
        kind=kind,
        retain_until=retain_until,
        legal_hold=bool(held),
        expired=body is None,
    )


def _row_to_checkpoint(row: Sequence[Any]) -> Checkpoint:
    log_id, size, root_hash, timestamp, signature = row
    return Checkpoint(log_id, int(size), bytes(root_hash), timestamp, bytes(signature))


def _lock_key(log_id: str) -> int:
    """A stable signed 64-bit advisory-lock key for the log."""
    return int.from_bytes(
        uuid.uuid5(uuid.NAMESPACE_URL, f"expound:{log_id}").bytes[:8], "big", signed=True
    )


async def install_schema(
    conn: Conn, service_role: str | None = None, retention_role: str | None = None
) -> None:
    """Creates the archive's tables and triggers (idempotent) and grants the roles.

    Run as the schema's owner. The service role gets SELECT and INSERT on every table and
    nothing else; the retention role also gets DELETE on payloads and holds (expiry and
    releasing holds), which the triggers still restrict.

    Args:
        conn: A connection of the owner, outside a transaction.
        service_role: The role the service connects as, if any.
        retention_role: The role that runs expiry and holds, if any.
    """
    await conn.execute(SCHEMA)
    tables = sql.SQL(", ").join(sql.Identifier(name) for name in TABLES)
    for role in (service_role, retention_role):
        if role:
            await conn.execute(
                sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(tables, sql.Identifier(role))
            )
    if retention_role:
        await conn.execute(
            sql.SQL("GRANT DELETE ON payloads, holds TO {}").format(sql.Identifier(retention_role))
        )


class PostgresArchive:
    """Append-only record store and Merkle log in PostgreSQL."""

    def __init__(
        self, pool: AsyncConnectionPool[Conn], signer: CheckpointPolicy, retention: RetentionPolicy
    ) -> None:
        """Use `open`."""
        self._pool = pool
        self._signer = signer
        self._retention = retention
        self._lock = _lock_key(signer.log_id)
        self._frontier: tuple[int, list[bytes]] = (0, [])

    @classmethod
    async def open(
        cls,
        dsn: str,
        signer_for: Callable[[Checkpoint | None], CheckpointPolicy],
        retention: RetentionPolicy,
        max_connections: int = 8,
    ) -> PostgresArchive:
        """Connects, creating the schema if the tables are missing and the role may.

        Args:
            dsn: libpq connection string or URL.
            signer_for: Given the latest checkpoint, the policy that signs this log.
            retention: How long payloads are kept.
            max_connections: Pool size.

        Raises:
            ArchiveUnavailable: If the database cannot be reached or set up.
        """

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
                if found is None or found[0] is None:
                    await install_schema(conn)
                latest = await cls._latest_checkpoint(conn)
            signer = signer_for(latest)
        except psycopg.Error as exc:
            await pool.close()
            raise ArchiveUnavailable(f"archive database: {exc}") from exc
        except BaseException:
            await pool.close()
            raise
        return cls(pool, signer, retention)

    # -- the log -------------------------------------------------------------------------

    @staticmethod
    async def _size(conn: Conn) -> int:
        row = await (await conn.execute("SELECT coalesce(max(seq) + 1, 0) FROM records")).fetchone()
        assert row is not None
        return int(row[0])

    @staticmethod
    async def _nodes(conn: Conn, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        wanted = set(keys)
        leaves = [index for level, index in wanted if level == 0]
        inner = [(level, index) for level, index in wanted if level]
        cursor = await conn.execute(
            NODES, (leaves, [level for level, _ in inner], [index for _, index in inner])
        )
        found = {
            (int(level), int(index)): bytes(value)
            for level, index, value in await cursor.fetchall()
        }
        missing = wanted - found.keys()
        if missing:
            raise ArchiveUnavailable(f"the log is missing its nodes {sorted(missing)}")
        return found

    async def _current_frontier(self, conn: Conn) -> tuple[int, list[bytes]]:
        size = await self._size(conn)
        if self._frontier[0] == size:
            return self._frontier
        keys = frontier_keys(size)
        nodes = await self._nodes(conn, keys)
        return size, [nodes[key] for key in keys]

    @staticmethod
    async def _latest_checkpoint(conn: Conn) -> Checkpoint | None:
        cursor = await conn.execute(
            f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT 1"
        )
        row = await cursor.fetchone()
        return None if row is None else _row_to_checkpoint(row)

    @staticmethod
    async def _checkpoint_at(conn: Conn, size: int) -> Checkpoint | None:
        cursor = await conn.execute(
            f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE size = %s", (size,)
        )
        row = await cursor.fetchone()
        return None if row is None else _row_to_checkpoint(row)

    async def _sign(self, conn: Conn, size: int, root: bytes) -> Checkpoint:
        checkpoint = self._signer.sign(size, root)
        await conn.execute(
            f"INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
            (
                checkpoint.log_id,
                checkpoint.size,
                checkpoint.root_hash,
                checkpoint.timestamp,
                checkpoint.signature,
            ),
        )
        return checkpoint

    async def _append_in(
        self, conn: Conn, record: NewRecord, frontier: tuple[int, list[bytes]]
    ) -> tuple[StoredRecord, tuple[int, list[bytes]]]:
        """Appends inside the caller's locked transaction; returns the new frontier too."""
        size, hashes = frontier
        step = plan_append(size, hashes, record.leaf_hash)
        retain_until = self._retention.retain_until(record.model_id, record.created_at)
        await conn.execute(
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
        await conn.execute(
            "INSERT INTO payloads (seq, canonical) VALUES (%s, %s)", (step.seq, record.canonical)
        )
        if step.nodes:
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO nodes (level, idx, hash) VALUES (%s, %s, %s)",
                    [(level, index, value) for (level, index), value in step.nodes],
                )
        if self._signer.due(await self._latest_checkpoint(conn), step.seq + 1, datetime.now(UTC)):
            await self._sign(conn, step.seq + 1, step.root)
        stored = StoredRecord(
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
        return stored, (step.seq + 1, step.frontier)

    async def _locked(self, conn: Conn) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock,))

    async def append(self, record: NewRecord) -> StoredRecord:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await self._locked(conn)
                frontier = await self._current_frontier(conn)
                stored, after = await self._append_in(conn, record, frontier)
        except psycopg.errors.UniqueViolation as exc:
            constraint = exc.diag.constraint_name or ""
            if record.idempotency_key and "idempotency_key" in constraint:
                raise DuplicateIdempotencyKey(record.idempotency_key) from exc
            raise ArchiveUnavailable(f"record could not be committed: {exc}") from exc
        except psycopg.Error as exc:
            raise ArchiveUnavailable(f"record could not be committed: {exc}") from exc
        # Only committed state is cached; every append checks it against the log's size.
        self._frontier = after
        return stored

    # -- checkpoints and proofs ----------------------------------------------------------

    async def _covering(self, covering: int) -> Checkpoint | None:
        try:
            async with self._pool.connection() as conn:
                latest = await self._latest_checkpoint(conn)
                if latest is not None and latest.size >= covering:
                    return latest
                async with conn.transaction():
                    await self._locked(conn)
                    latest = await self._latest_checkpoint(conn)
                    if latest is not None and latest.size >= covering:
                        return latest
                    size, frontier = await self._current_frontier(conn)
                    if size == 0:
                        return None
                    return await self._sign(conn, size, fold_root(frontier))
        except psycopg.Error as exc:
            raise ArchiveUnavailable(f"checkpoint could not be signed: {exc}") from exc

    async def _read_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        try:
            async with self._pool.connection() as conn:
                return await self._nodes(conn, keys)
        except psycopg.Error as exc:
            raise ArchiveUnavailable(f"archive read failed: {exc}") from exc

    async def _read_checkpoint(self, size: int) -> Checkpoint | None:
        try:
            async with self._pool.connection() as conn:
                return await self._checkpoint_at(conn, size)
        except psycopg.Error as exc:
            raise ArchiveUnavailable(f"archive read failed: {exc}") from exc

    async def checkpoint(self, size: int = 0) -> Checkpoint | None:
        if size == 0:
            try:
                async with self._pool.connection() as conn:
                    current = await self._size(conn)
            except psycopg.Error as exc:
                raise ArchiveUnavailable(f"archive read failed: {exc}") from exc
            return await self._covering(current)
        return require_checkpoint(await self._read_checkpoint(size), size, "new_size")

    async def prove_inclusion(self, record: StoredRecord) -> InclusionProof:
        checkpoint = await self._covering(record.seq + 1)
        assert checkpoint is not None  # the log holds ``record``
        ranges = inclusion_ranges(record.seq, checkpoint.size)
        nodes = await self._read_nodes(keys_of(ranges))
        return InclusionProof(record.seq, record.leaf_hash, hashes_of(ranges, nodes), checkpoint)

    async def prove_consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        new = require_checkpoint(await self.checkpoint(new_size), new_size, "new_size")
        require_ordered(old_size, new.size)
        old = None
        if old_size:
            old = require_checkpoint(await self._read_checkpoint(old_size), old_size, "old_size")
        ranges = consistency_ranges(old_size, new.size)
        nodes = await self._read_nodes(keys_of(ranges))
        return ConsistencyProof(old, new, hashes_of(ranges, nodes))

    # -- reads ---------------------------------------------------------------------------

    async def _select_one(self, where: str, value: object) -> StoredRecord | None:
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(f"SELECT {COLUMNS} {FROM} WHERE {where}", (value,))
                row = await cursor.fetchone()
        except psycopg.Error as exc:
            raise ArchiveUnavailable(f"archive read failed: {exc}") from exc
        return None if row is None else _row_to_record(row)

    async def get(self, record_id: str) -> StoredRecord:
        found = await self._select_one("r.record_id = %s", record_id)
        if found is None:
            raise RecordNotFound(f"no record {record_id!r}")
        return found

    async def find_by_idempotency_key(self, key: str) -> StoredRecord | None:
        return await self._select_one("r.idempotency_key = %s", key)

    async def list(self, where: RecordFilter, page_size: int, page_token: str) -> RecordPage:
        below = parse_page_token(page_token)
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        clauses = ["r.kind = %s"]
        params: list[object] = [KIND_RECORD]
        for column, value, op in [
            ("r.model_id", where.model_id, "="),
            ("r.decision_id", where.decision_id, "="),
            ("r.created_at", where.since, ">="),
            ("r.created_at", where.until, "<"),
        ]:
            if value:
                clauses.append(f"{column} {op} %s")
                params.append(value)
        if below is not None:
            clauses.append("r.seq < %s")
            params.append(below)
        query = (
            f"SELECT {COLUMNS} {FROM} WHERE {' AND '.join(clauses)} ORDER BY r.seq DESC LIMIT %s"
        )
        params.append(size + 1)
        try:
            async with self._pool.connection() as conn:
                rows = [
                    _row_to_record(r) for r in await (await conn.execute(query, params)).fetchall()
                ]
        except psycopg.Error as exc:
            raise ArchiveUnavailable(f"archive read failed: {exc}") from exc
        more = len(rows) > size
        rows = rows[:size]
        return RecordPage(rows, str(rows[-1].seq) if more else "")

    async def count(self) -> int:
        """Number of log entries (records and tombstones)."""
        async with self._pool.connection() as conn:
            return await self._size(conn)

    # -- retention -----------------------------------------------------------------------

    async def set_legal_hold(self, record_id: str, held: bool, reason: str) -> StoredRecord:
        record = await self.get(record_id)
        try:
            async with self._pool.connection() as conn:
                if held:
                    await conn.execute(
                        "INSERT INTO holds (seq, reason, placed_at) VALUES (%s, %s, %s) "
                        "ON CONFLICT (seq) DO NOTHING",
                        (record.seq, reason, utc_now()),
                    )
                else:
                    await conn.execute("DELETE FROM holds WHERE seq = %s", (record.seq,))
        except psycopg.Error as exc:
            raise ArchiveUnavailable(f"hold could not be changed: {exc}") from exc
        return await self.get(record_id)

    async def expire(self, record_ids: Sequence[str] | None = None) -> ExpiryReport:
        now = utc_now()
        expired: list[StoredRecord] = []
        tombstones: list[StoredRecord] = []
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await self._locked(conn)
                if record_ids is None:
                    cursor = await conn.execute(
                        f"SELECT {COLUMNS} {FROM} WHERE r.kind = %s AND r.retain_until <= %s "
                        "AND p.seq IS NOT NULL AND h.seq IS NULL ORDER BY r.seq",
                        (KIND_RECORD, now),
                    )
                    due = [_row_to_record(row) for row in await cursor.fetchall()]
                else:
                    due = []
                    for record_id in record_ids:
                        cursor = await conn.execute(
                            f"SELECT {COLUMNS} {FROM} WHERE r.record_id = %s", (record_id,)
                        )
                        row = await cursor.fetchone()
                        if row is None:
                            raise RecordNotFound(f"no record {record_id!r}")
                        due.append(_row_to_record(row))
                frontier = await self._current_frontier(conn)
                for record in due:
                    require_expirable(record, now)
                    await conn.execute("DELETE FROM payloads WHERE seq = %s", (record.seq,))
                    tombstone = build_tombstone(record, str(uuid.uuid4()), now)
                    stored, frontier = await self._append_in(conn, tombstone, frontier)
                    tombstones.append(stored)
                    expired.append(record)
        except psycopg.errors.IntegrityConstraintViolation as exc:
            raise RetentionRefused(f"payload may not be removed: {exc}") from exc
        except psycopg.Error as exc:
            raise ArchiveUnavailable(f"expiry could not be committed: {exc}") from exc
        self._frontier = frontier
        return ExpiryReport(expired, tombstones)

    async def aclose(self) -> None:
        await self._pool.close()


async def read_log(conn: Conn) -> tuple[AsyncGenerator[LogRow, None], list[Checkpoint]]:
    """Everything an audit reads, streamed with a server-side cursor.

    Args:
        conn: A connection outside any transaction; the rows are read in one.

    Returns:
        The log entries in ``seq`` order and every checkpoint, by size.
    """
    cursor = await conn.execute(f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size")
    checkpoints = [_row_to_checkpoint(row) for row in await cursor.fetchall()]

    async def rows() -> AsyncGenerator[LogRow, None]:
        async with conn.transaction(), conn.cursor(name="expound_audit") as stream:
            await stream.execute(
                "SELECT r.seq, r.leaf_hash, r.root_after, p.canonical, r.kind "
                "FROM records r LEFT JOIN payloads p ON p.seq = r.seq ORDER BY r.seq"
            )
            async for seq, leaf, root_after, canonical, kind in stream:
                body = None if canonical is None else bytes(canonical)
                yield LogRow(int(seq), bytes(leaf), bytes(root_after), body, kind)

    return rows(), checkpoints
