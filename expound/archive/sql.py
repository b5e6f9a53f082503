"""The archive's tables in SQL, shared by the SQLite and PostgreSQL adapters.

The statements are written once with ``?`` placeholders; an adapter supplies a `Cursor` that
runs them in its transaction (PostgreSQL's turns ``?`` into ``%s``). Only the DDL, the
locking and the error translation differ between the two databases.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from expound.archive.adapter import Entry, Query
from expound.archive.checkpoint import Checkpoint
from expound.archive.log import NodeKey
from expound.archive.records import INDEXED, KIND_HOLD, KIND_RECORD, KIND_RELEASE, StoredRecord
from expound.archive.store import AccessEntry, LogRow

TABLES = ("records", "payloads", "nodes", "checkpoints", "access_log", "access_records")


def held(seq: str) -> str:
    """SQL: whether entry ``seq`` has a hold event that no release event names."""
    return (
        f"EXISTS (SELECT 1 FROM records h WHERE h.kind = '{KIND_HOLD}' AND h.target_seq = "
        f"{seq} AND NOT EXISTS (SELECT 1 FROM records x WHERE x.kind = '{KIND_RELEASE}' "
        "AND x.target_seq = h.seq))"
    )


COLUMNS = (
    "r.seq, r.record_id, r.model_id, r.decision_id, r.idempotency_key, r.request_sha256, "
    "r.created_at, r.decision, r.sha256, p.canonical, r.leaf_hash, r.kind, r.retain_until, "
    f"{held('r.seq')}, r.principal, r.target_seq"
)
FROM = "FROM records r LEFT JOIN payloads p ON p.seq = r.seq"
INSERT_RECORD = (
    "INSERT INTO records (seq, kind, record_id, model_id, decision_id, principal, "
    "idempotency_key, request_sha256, created_at, decision, sha256, leaf_hash, root_after, "
    "retain_until, target_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
LOG_COLUMNS = ", ".join(f"r.{name}" for name in INDEXED) + ", r.sha256"
CHECKPOINT_COLUMNS = "log_id, size, root_hash, timestamp, signature, key_id"
ACCESS_COLUMNS = "seq, at, principal, rpc, request_id"

Row = tuple[Any, ...]


class Cursor(Protocol):
    """Runs statements in the adapter's current transaction."""

    async def rows(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        """The rows a query returns."""
        ...

    async def run(self, statement: str, params: Sequence[object] = ()) -> None:
        """Runs one statement."""
        ...

    async def run_many(self, statement: str, params: Sequence[Sequence[object]]) -> None:
        """Runs one statement once per parameter row."""
        ...


def _record(row: Row) -> StoredRecord:
    (seq, record_id, model_id, decision_id, key, request_sha256, created, decision, sha) = row[:9]
    body, leaf, kind, retain_until, is_held, principal, target = row[9:]
    return StoredRecord(
        seq=int(seq),
        record_id=str(record_id),
        model_id=str(model_id),
        decision_id=str(decision_id),
        idempotency_key=str(key or ""),
        request_sha256=str(request_sha256),
        created_at=str(created),
        decision=str(decision),
        sha256=str(sha),
        canonical=b"" if body is None else bytes(body),
        leaf_hash=bytes(leaf),
        kind=str(kind),
        retain_until=str(retain_until),
        legal_hold=bool(is_held),
        expired=body is None,
        principal=str(principal),
        target_seq=None if target is None else int(target),
    )


def _log_row(row: Row) -> LogRow:
    seq, leaf, root, body = row[:4]
    columns = list(row[4:])
    key = INDEXED.index("idempotency_key")
    columns[key] = columns[key] or ""  # stored as NULL when absent, so keys stay unique
    return LogRow(
        int(seq), bytes(leaf), bytes(root), None if body is None else bytes(body), tuple(columns)
    )


def _checkpoint(row: Row) -> Checkpoint:
    log_id, size, root_hash, timestamp, signature, key_id = row
    return Checkpoint(
        str(log_id), int(size), bytes(root_hash), str(timestamp), bytes(signature), bytes(key_id)
    )


def _access(row: Row, record_ids: tuple[str, ...]) -> AccessEntry:
    seq, at, principal, rpc, request_id = row
    return AccessEntry(str(at), str(principal), str(rpc), str(request_id), record_ids, int(seq))


def _record_row(entry: Entry) -> tuple[object, ...]:
    record = entry.record
    return (
        entry.seq,
        record.kind,
        record.record_id,
        record.model_id,
        record.decision_id,
        record.principal,
        record.idempotency_key or None,
        record.request_sha256,
        record.created_at,
        record.decision,
        record.sha256,
        record.leaf_hash,
        entry.root_after,
        record.retain_until,
        record.target_seq,
    )


def _marks(count: int) -> str:
    return ", ".join(["?"] * count)


class SqlTables:
    """`expound.archive.engine.Tables` over the shared schema."""

    REMOVE_PAYLOAD = "DELETE FROM payloads WHERE seq = ?"
    """How a payload is removed (PostgreSQL calls its owner's guarded function instead)."""

    def __init__(self, cursor: Cursor) -> None:
        """Works in ``cursor``'s transaction."""
        self._cursor = cursor

    async def size(self) -> int:
        (row,) = await self._cursor.rows("SELECT coalesce(max(seq) + 1, 0) FROM records")
        return int(row[0])

    async def nodes(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        leaves = [index for level, index in keys if level == 0]
        inner = [(level, index) for level, index in keys if level]
        found: list[Row] = []
        if leaves:
            found += await self._cursor.rows(
                f"SELECT 0, seq, leaf_hash FROM records WHERE seq IN ({_marks(len(leaves))})",
                leaves,
            )
        if inner:
            # OR of key lookups, not a row-value IN list: SQLite scans the table for that.
            lookups = " OR ".join(["(level = ? AND idx = ?)"] * len(inner))
            found += await self._cursor.rows(
                f"SELECT level, idx, hash FROM nodes WHERE {lookups}",
                [value for key in inner for value in key],
            )
        return {(int(level), int(index)): bytes(value) for level, index, value in found}

    async def checkpoint(self, size: int | None) -> Checkpoint | None:
        if size is None:
            rows = await self._cursor.rows(
                f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT 1"
            )
        else:
            rows = await self._cursor.rows(
                f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE size = ?", (size,)
            )
        return _checkpoint(rows[0]) if rows else None

    async def checkpoints(self) -> list[Checkpoint]:
        rows = await self._cursor.rows(
            f"SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size"
        )
        return [_checkpoint(row) for row in rows]

    async def insert_entry(self, entry: Entry) -> None:
        await self.insert_entries([entry])

    async def insert_entries(self, entries: Sequence[Entry]) -> None:
        # One statement per table for the whole group: over PostgreSQL, three round trips
        # (pipelined) instead of three per record, inside the log's lock.
        await self._cursor.run_many(INSERT_RECORD, [_record_row(entry) for entry in entries])
        await self._cursor.run_many(
            "INSERT INTO payloads (seq, canonical) VALUES (?, ?)",
            [(entry.seq, entry.record.canonical) for entry in entries],
        )
        nodes = [
            (level, index, value) for entry in entries for (level, index), value in entry.nodes
        ]
        if nodes:
            await self._cursor.run_many(
                "INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)", nodes
            )

    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._cursor.run(
            f"INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (
                checkpoint.log_id,
                checkpoint.size,
                checkpoint.root_hash,
                checkpoint.timestamp,
                checkpoint.signature,
                checkpoint.key_id,
            ),
        )

    async def select(self, query: Query) -> list[StoredRecord]:
        clauses: list[str] = []
        params: list[object] = []

        def where(clause: str, *values: object) -> None:
            clauses.append(clause)
            params.extend(values)

        if query.record_id:
            where("r.record_id = ?", query.record_id)
        if query.idempotency_key:
            where(
                "r.principal = ? AND r.idempotency_key = ?", query.principal, query.idempotency_key
            )
        if query.about_seq is not None:
            where(
                f"(r.target_seq = ? OR r.target_seq IN (SELECT e.seq FROM records e WHERE "
                f"e.kind = '{KIND_HOLD}' AND e.target_seq = ?))",
                query.about_seq,
                query.about_seq,
            )
        listing = query.listing
        if listing is not None:
            where("r.kind = ?", KIND_RECORD)
            for clause, value in [
                ("r.model_id = ?", listing.model_id),
                ("r.decision_id = ?", listing.decision_id),
                ("r.principal = ?", listing.principal),
                ("r.created_at >= ?", listing.since),
                ("r.created_at < ?", listing.until),
            ]:
                if value:
                    where(clause, value)
        if query.below is not None:
            where("r.seq < ?", query.below)
        if query.expirable_at:
            where("r.kind = ? AND r.retain_until <= ?", KIND_RECORD, query.expirable_at)
            where(f"p.seq IS NOT NULL AND NOT {held('r.seq')}")
        statement = f"SELECT {COLUMNS} {FROM} WHERE {' AND '.join(clauses) or 'TRUE'}"
        statement += " ORDER BY r.seq DESC" if listing is not None else " ORDER BY r.seq"
        if query.limit:
            statement += " LIMIT ?"
            params.append(query.limit)
        return [_record(row) for row in await self._cursor.rows(statement, params)]

    async def log_rows(self, start: int, limit: int) -> list[LogRow]:
        rows = await self._cursor.rows(
            f"SELECT r.seq, r.leaf_hash, r.root_after, p.canonical, {LOG_COLUMNS} FROM records r "
            "LEFT JOIN payloads p ON p.seq = r.seq WHERE r.seq >= ? ORDER BY r.seq LIMIT ?",
            (start, limit),
        )
        return list(map(_log_row, rows))

    async def active_hold(self, seq: int) -> StoredRecord | None:
        found = await self._cursor.rows(
            f"SELECT {COLUMNS} {FROM} WHERE r.kind = ? AND r.target_seq = ? AND NOT EXISTS "
            "(SELECT 1 FROM records x WHERE x.kind = ? AND x.target_seq = r.seq)",
            (KIND_HOLD, seq, KIND_RELEASE),
        )
        return _record(found[0]) if found else None

    async def remove_payload(self, seq: int) -> None:
        await self._cursor.run(self.REMOVE_PAYLOAD, (seq,))

    async def insert_access(self, entry: AccessEntry) -> None:
        (row,) = await self._cursor.rows(
            "INSERT INTO access_log (at, principal, rpc, request_id) VALUES (?, ?, ?, ?) "
            "RETURNING seq",
            (entry.at, entry.principal, entry.rpc, entry.request_id),
        )
        if entry.record_ids:
            await self._cursor.run_many(
                "INSERT INTO access_records (access_seq, position, record_id) VALUES (?, ?, ?)",
                [(row[0], position, record) for position, record in enumerate(entry.record_ids)],
            )

    async def access_rows(self, after: int, limit: int, record_id: str) -> list[AccessEntry]:
        statement = f"SELECT {ACCESS_COLUMNS} FROM access_log WHERE seq > ?"
        params: list[object] = [after]
        if record_id:
            statement += " AND seq IN (SELECT access_seq FROM access_records WHERE record_id = ?)"
            params.append(record_id)
        rows = await self._cursor.rows(f"{statement} ORDER BY seq LIMIT ?", [*params, limit])
        if not rows:
            return []
        read: dict[int, list[str]] = {int(row[0]): [] for row in rows}
        for seq, record in await self._cursor.rows(
            "SELECT access_seq, record_id FROM access_records WHERE access_seq BETWEEN ? AND ? "
            "ORDER BY access_seq, position",
            (rows[0][0], rows[-1][0]),
        ):
            if int(seq) in read:
                read[int(seq)].append(str(record))
        return [_access(row, tuple(read[int(row[0])])) for row in rows]
