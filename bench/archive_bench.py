"""Archive benchmarks (issue 5): appends with the Merkle log on SQLite and PostgreSQL, and
a full audit of 100,000 records.

``run()`` returns the figures; ``python -m bench.archive_bench`` prints them as JSON.
Appends go through the real stores (synchronous=FULL on SQLite, synchronous_commit=on on
PostgreSQL), each one a committed transaction that also writes the log's nodes and, every
1000 records, a signed checkpoint. "Proof" timings are inclusion proofs to the latest
checkpoint, as ``GetRecord(include_proof=true)`` builds them.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive.audit import audit
from expound.archive.checkpoint import Checkpoint
from expound.archive.records import NewRecord
from expound.archive.retention import RetentionPolicy
from expound.archive.signing import CheckpointPolicy
from expound.archive.sqlite import open_sqlite
from expound.archive.store import ArchiveStore

RECORD_BYTES = 4000  # about the size of a real Explain record with four candidates
APPENDS_PER_WRITER = {1: 400, 8: 100}
AUDIT_RECORDS = 100_000


def _record(n: int) -> NewRecord:
    record_id = str(uuid.uuid4())
    created = "2026-01-01T00:00:00.000000Z"
    body = {
        "kind": "record",
        "record_id": record_id,
        "created_at": created,
        "model_id": "bench",
        "decision_id": f"d{n}",
        "decision": "decline",
        "principal": "bench",
        "request_sha256": "0" * 64,
        "n": n,
        "padding": "x" * RECORD_BYTES,
    }
    return NewRecord.from_body(body)


def _signer(key: Ed25519PrivateKey) -> Any:
    def build(latest: Checkpoint | None) -> CheckpointPolicy:
        return CheckpointPolicy("bench", key, 1000, 3600.0)

    return build


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 3),
        "appends_per_s": 0.0,
    }


async def _appends(store: ArchiveStore, writers: int) -> dict[str, float]:
    latencies: list[float] = []

    async def writer(offset: int) -> None:
        for n in range(APPENDS_PER_WRITER[writers]):
            record = _record(offset + n)
            started = time.perf_counter()
            await store.append(record)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*[writer(w * 100_000) for w in range(writers)])
    elapsed = time.perf_counter() - started
    figures = _percentiles(latencies)
    figures["appends_per_s"] = round(len(latencies) / elapsed, 1)
    # As the service's checkpoint task does on its schedule (reads never sign).
    await store.publish_checkpoint(force=True)
    proofs: list[float] = []
    for record in (await store.list(_all(), 100, "")).records:
        started = time.perf_counter()
        await store.prove_inclusion(record)
        proofs.append(time.perf_counter() - started)
    figures["proof_p50_ms"] = round(statistics.median(proofs) * 1000, 3)
    return figures


def _all() -> Any:
    from expound.archive.store import RecordFilter

    return RecordFilter()


async def _sqlite(folder: Path, key: Ed25519PrivateKey) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for writers in (1, 8):
        path = folder / f"append-{writers}.sqlite3"
        store = await open_sqlite(path, _signer(key), RetentionPolicy())
        try:
            results[f"writers_{writers}"] = await _appends(store, writers)
        finally:
            await store.aclose()
    return results


async def _postgres(key: Ed25519PrivateKey) -> dict[str, Any]:
    import psycopg

    from expound.archive.postgres import install_schema, open_postgres

    socket_dir = "/var/run/postgresql"
    database = f"expound_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(host=socket_dir, dbname="postgres", autocommit=True)
    except psycopg.Error as exc:
        return {"skipped": f"no PostgreSQL on {socket_dir} ({exc}); run scripts/ensure_postgres.sh"}
    results: dict[str, Any] = {}
    with admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        try:
            dsn = f"host={socket_dir} dbname={database}"
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as owner:
                await install_schema(owner)
            for writers in (1, 8):
                store = await open_postgres(dsn, _signer(key), RetentionPolicy())
                try:
                    results[f"writers_{writers}"] = await _appends(store, writers)
                finally:
                    await store.aclose()
        finally:
            admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    return results


async def _audit(folder: Path, key: Ed25519PrivateKey) -> dict[str, Any]:
    path = folder / "audit.sqlite3"
    store = await open_sqlite(path, _signer(key), RetentionPolicy())
    try:
        for start in range(0, AUDIT_RECORDS, 10_000):
            await store.append_batch([_record(n) for n in range(start, start + 10_000)])
    finally:
        await store.aclose()
    started = time.perf_counter()
    reader = await open_sqlite(path, None, RetentionPolicy())
    try:
        report = await audit(await reader.read_log(), key.public_key())
    finally:
        await reader.aclose()
    elapsed = time.perf_counter() - started
    assert report.ok and report.size == AUDIT_RECORDS, report.problem
    return {
        "records": AUDIT_RECORDS,
        "record_bytes": RECORD_BYTES,
        "checkpoints": report.checkpoints,
        "seconds": round(elapsed, 2),
    }


def run() -> dict[str, Any]:
    """Runs every archive benchmark and returns the figures."""
    key = Ed25519PrivateKey.generate()

    async def all_benchmarks() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="expound-bench-") as folder:
            return {
                "append_sqlite": await _sqlite(Path(folder), key),
                "append_postgres": await _postgres(key),
                "audit_sqlite_100k": await _audit(Path(folder), key),
                "targets": {"append_sqlite_p50_ms": 2.0, "audit_100k_seconds": 10.0},
            }

    return asyncio.run(all_benchmarks())


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
