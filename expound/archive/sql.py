"""The archive's tables in SQL, shared by the SQLite and PostgreSQL adapters.

The statements are written once with ``?`` placeholders; an adapter supplies a `Cursor` that
runs them in its transaction (PostgreSQL's turns ``?`` into ``%s``). Only the DDL, the
locking and the error translation differ between the two databases.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from expound.archive.adapter import Entry, Hold, Query
from expound.archive.checkpoint import Checkpoint
from expound.archive.log import NodeKey
from expound.archive.records import KIND_RECORD, StoredRecord
from expound.archive.store import LogRow

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
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
CHECKPOINT_COLUMNS = "log_id, size, root_hash, timestamp, signature"

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
    body, leaf, kind, retain_until, held = row[9:]
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
        legal_hold=bool(held),
        expired=body is None,
    )


def _checkpoint(row: Row) -> Checkpoint:
    log_id, size, root_hash, timestamp, signature = row
    return Checkpoint(str(log_id), int(size), bytes(root_hash), str(timestamp), bytes(signature))


def _marks(count: int) -> str:
    return ", ".join(["?"] * count)


class SqlTables:
    """`expound.archive.engine.Tables` over the shared schema."""

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
        record = entry.record
        await self._cursor.run(
            INSERT_RECORD,
            (
                entry.seq,
                record.kind,
                record.record_id,
                record.model_id,
                record.decision_id,
                record.idempotency_key or None,
                record.request_sha256,
                record.created_at,
                record.decision,
                record.sha256,
                record.leaf_hash,
                entry.root_after,
                entry.retain_until,
            ),
        )
        await self._cursor.run(
            "INSERT INTO payloads (seq, canonical) VALUES (?, ?)", (entry.seq, record.canonical)
        )
        if entry.nodes:
            await self._cursor.run_many(
                "INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)",
                [(level, index, value) for (level, index), value in entry.nodes],
            )

    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._cursor.run(
            f"INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (
                checkpoint.log_id,
                checkpoint.size,
                checkpoint.root_hash,
                checkpoint.timestamp,
                checkpoint.signature,
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
            where("r.idempotency_key = ?", query.idempotency_key)
        listing = query.listing
        if listing is not None:
            where("r.kind = ?", KIND_RECORD)
            for clause, value in [
                ("r.model_id = ?", listing.model_id),
                ("r.decision_id = ?", listing.decision_id),
                ("r.created_at >= ?", listing.since),
                ("r.created_at < ?", listing.until),
            ]:
                if value:
                    where(clause, value)
        if query.below is not None:
            where("r.seq < ?", query.below)
        if query.expirable_at:
            where("r.kind = ? AND r.retain_until <= ?", KIND_RECORD, query.expirable_at)
            where("p.seq IS NOT NULL AND h.seq IS NULL")
        statement = f"SELECT {COLUMNS} {FROM} WHERE {' AND '.join(clauses) or 'TRUE'}"
        statement += " ORDER BY r.seq DESC" if listing is not None else " ORDER BY r.seq"
        if query.limit:
            statement += " LIMIT ?"
            params.append(query.limit)
        return [_record(row) for row in await self._cursor.rows(statement, params)]

    async def log_rows(self, start: int, limit: int) -> list[LogRow]:
        rows = await self._cursor.rows(
            "SELECT r.seq, r.leaf_hash, r.root_after, p.canonical, r.kind FROM records r "
            "LEFT JOIN payloads p ON p.seq = r.seq WHERE r.seq >= ? ORDER BY r.seq LIMIT ?",
            (start, limit),
        )
        return list(map(LogRow._make, rows))

    async def hold(self, seq: int) -> Hold | None:
        rows = await self._cursor.rows("SELECT reason, placed_at FROM holds WHERE seq = ?", (seq,))
        return Hold(str(rows[0][0]), str(rows[0][1])) if rows else None

    async def place_hold(self, seq: int, hold: Hold) -> None:
        await self._cursor.run(
            "INSERT INTO holds (seq, reason, placed_at) VALUES (?, ?, ?)",
            (seq, hold.reason, hold.placed_at),
        )

    async def release_hold(self, seq: int) -> None:
        await self._cursor.run("DELETE FROM holds WHERE seq = ?", (seq,))

    async def remove_payload(self, seq: int) -> None:
        await self._cursor.run("DELETE FROM payloads WHERE seq = ?", (seq,))
