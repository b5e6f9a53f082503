"""Two service replicas (``expound serve`` subprocesses) appending to one PostgreSQL log.

One sequence with no gap and no duplicate, the audit valid, an idempotency key honoured
across replicas, checkpoints signed once per interval between them, and every answered
record surviving SIGKILLs of either replica or both.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from expound.archive.audit import AuditReport, audit
from expound.archive.checkpoint import Checkpoint, generate_private_key_file, load_private_key
from expound.archive.postgres import install_schema
from expound.archive.retention import RetentionPolicy
from expound.clients.client import ExplainClient
from expound.times import parse_utc
from tests.conftest import GBM
from tests.support.archive_backends import PostgresRoles
from tests.support.server_process import free_port, start_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CHECKPOINT_S = 0.5


@dataclass
class Replicas:
    """The environment two replicas share: one database, one signing key."""

    env: dict[str, str]
    roles: PostgresRoles
    key_path: Path
    logs: Path

    def start(self, name: str) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        server = start_server({**self.env, "EXPOUND_PORT": str(port)}, self.logs / f"{name}.log")
        return server, port

    def audit(self) -> tuple[AuditReport, list[Checkpoint], set[str]]:
        """The log's audit, its checkpoints, and the record ids it holds."""
        return asyncio.run(_audit(self.roles.service_dsn, self.key_path))


async def _audit(dsn: str, key_path: Path) -> tuple[AuditReport, list[Checkpoint], set[str]]:
    from expound.archive.postgres import open_postgres

    store = await open_postgres(dsn, None, RetentionPolicy())
    try:
        log = await store.read_log()
        checkpoints = list(log.checkpoints)
        report = await audit(log, load_private_key(key_path).public_key())
        rows = (await store.read_log()).rows
        held = {json.loads(row.canonical)["record_id"] async for row in rows if row.canonical}
    finally:
        await store.aclose()
    return report, checkpoints, held


@pytest.fixture
def replicas(postgres_roles: PostgresRoles, models_dir: Path, tmp_path: Path) -> Iterator[Replicas]:
    async def init() -> None:
        async with await psycopg.AsyncConnection.connect(
            postgres_roles.owner_dsn, autocommit=True
        ) as owner:
            await install_schema(owner, postgres_roles.service)

    asyncio.run(init())
    # The operator gives every replica the log's one key (none may make its own).
    key_path = tmp_path / "signing-key.pem"
    generate_private_key_file(key_path)
    env = {
        **os.environ,
        "EXPOUND_MODEL_DIR": str(models_dir),
        "EXPOUND_ARCHIVE_BACKEND": "postgres",
        "EXPOUND_ARCHIVE_DSN": postgres_roles.service_dsn,
        "EXPOUND_SIGNING_KEY_PATH": str(key_path),
        "EXPOUND_SIGNING_KEY_CREATE": "false",
        "EXPOUND_CHECKPOINT_EVERY_RECORDS": "1000000",
        "EXPOUND_CHECKPOINT_EVERY_SECONDS": str(CHECKPOINT_S),
        "EXPOUND_LLM_MODE": "off",
        "EXPOUND_RANKER_EMBEDDER": "hashing",
        "EXPOUND_METRICS_PORT": "0",
        "EXPOUND_HOME": str(tmp_path),
    }
    yield Replicas(env, postgres_roles, key_path, tmp_path)


def _sequence(roles: PostgresRoles) -> tuple[int, int, int]:
    """Entries, distinct sequence numbers and the highest plus one, as the owner reads them."""
    with psycopg.connect(roles.owner_dsn) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT seq), coalesce(max(seq) + 1, 0) FROM records"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def _stream(port: int, applicant: dict[str, Any], acked: list[str], stop: threading.Event) -> None:
    with ExplainClient(f"127.0.0.1:{port}", timeout=10) as client:
        while not stop.is_set():
            try:
                acked.append(client.explain(GBM, applicant, decision_id="replica").record_id)
            except grpc.RpcError:
                return


def _explain_with_key(
    port: int, applicant: dict[str, Any], key: str, start: threading.Barrier
) -> str:
    with ExplainClient(f"127.0.0.1:{port}", timeout=10) as client:
        start.wait()
        return client.explain(GBM, applicant, idempotency_key=key).record_id


def test_two_replicas_keep_one_log_and_one_record_per_key(
    replicas: Replicas, denied_applicant: dict[str, Any]
) -> None:
    servers = [replicas.start("a"), replicas.start("b")]
    acked: list[str] = []
    stop = threading.Event()
    writers = [
        threading.Thread(target=_stream, args=(port, denied_applicant, acked, stop))
        for _, port in servers
        for _ in range(4)
    ]
    same_key: list[tuple[str, str]] = []
    try:
        for writer in writers:
            writer.start()
        with ThreadPoolExecutor(2) as pool:
            for _ in range(5):
                # The same principal and key on both replicas at once: one record, both
                # told it.
                key, start = str(uuid.uuid4()), threading.Barrier(2)
                calls = [
                    pool.submit(_explain_with_key, port, denied_applicant, key, start)
                    for _, port in servers
                ]
                first, second = (call.result(30) for call in calls)
                same_key.append((first, second))
        time.sleep(4 * CHECKPOINT_S)
    finally:
        stop.set()
        for writer in writers:
            writer.join(30)
        for server, _ in servers:
            server.send_signal(signal.SIGTERM)
        for server, _ in servers:
            server.wait(30)
    assert all(first == second for first, second in same_key), same_key
    assert len(acked) > 50, "the replicas hardly served"

    report, checkpoints, held = replicas.audit()
    assert report.ok, report.problem
    entries, distinct, end = _sequence(replicas.roles)
    assert entries == distinct == end == report.size, "one sequence, no gap, no duplicate"
    assert report.size == len(set(acked)) + len(same_key)
    assert set(acked) | {first for first, _ in same_key} == held
    # Once per interval between the two of them; the last is the shutdown's final one.
    signed = [parse_utc(checkpoint.timestamp) for checkpoint in checkpoints[:-1]]
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(signed)]
    assert len(gaps) >= 3 and min(gaps) >= CHECKPOINT_S, gaps
    assert checkpoints[-1].size == report.size


def test_every_acknowledged_record_survives_sigkill_of_either_replica(
    replicas: Replicas, denied_applicant: dict[str, Any]
) -> None:
    rng = random.Random(14)
    acked: list[str] = []
    for cycle in range(4):
        servers = [replicas.start(f"a{cycle}"), replicas.start(f"b{cycle}")]
        stop = threading.Event()
        writers = [
            threading.Thread(target=_stream, args=(port, denied_applicant, acked, stop))
            for _, port in servers
            for _ in range(3)
        ]
        try:
            for writer in writers:
                writer.start()
            # One replica dies first while the other keeps appending, then the other.
            rng.shuffle(servers)
            for server, _ in servers:
                time.sleep(rng.uniform(0.8, 2.0))
                server.send_signal(signal.SIGKILL)
                server.wait(10)
        finally:
            stop.set()
            for server, _ in servers:
                server.kill()
                server.wait()
            for writer in writers:
                writer.join(15)
        assert all(server.returncode == -signal.SIGKILL for server, _ in servers)

    assert len(acked) >= 8, "the stream never got going"
    report, _, held = replicas.audit()
    assert report.ok, report.problem
    entries, distinct, end = _sequence(replicas.roles)
    assert entries == distinct == end == report.size
    missing = set(acked) - held
    assert not missing, f"{len(missing)} acknowledged record(s) lost"
