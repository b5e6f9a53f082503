"""Durability: SIGKILL the real server mid-stream, restart, and find every answered record.

The server runs as a subprocess (``expound serve``, settings from EXPOUND_* variables), so
the kill lands wherever it lands: between a commit and its answer, mid-transaction, mid-
checkpoint. An answer implies a committed record, so after every restart each record id a
client was given must be in the archive, and the whole log must audit clean.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from expound.archive.audit import AuditReport, audit
from expound.archive.checkpoint import load_private_key
from expound.archive.retention import RetentionPolicy
from expound.archive.sqlite import open_sqlite
from expound.clients.client import ExplainClient
from tests.conftest import GBM
from tests.support.server_process import free_port, start_server

CYCLES = 4
WRITERS = 4

pytestmark = pytest.mark.slow


async def audit_file(archive: Path, key_path: Path) -> tuple[AuditReport, set[str]]:
    """The audit of the archive file, and the record ids it holds."""
    store = await open_sqlite(archive, None, RetentionPolicy())
    try:
        report = await audit(await store.read_log(), load_private_key(key_path).public_key())
        rows = (await store.read_log()).rows
        stored = {json.loads(row.canonical)["record_id"] async for row in rows if row.canonical}
    finally:
        await store.aclose()
    return report, stored


def stream_explains(
    port: int, applicant: dict[str, Any], acked: list[str], stop: threading.Event
) -> None:
    with ExplainClient(f"127.0.0.1:{port}", timeout=10) as client:
        while not stop.is_set():
            try:
                response = client.explain(GBM, applicant, decision_id="crash")
            except grpc.RpcError:
                return
            acked.append(response.record_id)


def test_every_acknowledged_record_survives_sigkill(
    models_dir: Path, tmp_path: Path, denied_applicant: dict[str, Any]
) -> None:
    archive = tmp_path / "archive.sqlite3"
    key_path = tmp_path / "signing-key.pem"
    env = {
        **os.environ,
        "EXPOUND_MODEL_DIR": str(models_dir),
        "EXPOUND_ARCHIVE_PATH": str(archive),
        "EXPOUND_SIGNING_KEY_PATH": str(key_path),
        "EXPOUND_CHECKPOINT_EVERY_RECORDS": "7",
        "EXPOUND_LLM_MODE": "off",
        "EXPOUND_RANKER_EMBEDDER": "hashing",
    }
    rng = random.Random(5)
    acked: list[str] = []
    for _ in range(CYCLES):
        port = free_port()
        server = start_server({**env, "EXPOUND_PORT": str(port)}, tmp_path / "server.log")
        stop = threading.Event()
        writers = [
            threading.Thread(target=stream_explains, args=(port, denied_applicant, acked, stop))
            for _ in range(WRITERS)
        ]
        try:
            for writer in writers:
                writer.start()
            time.sleep(rng.uniform(0.8, 2.0))
            server.send_signal(signal.SIGKILL)
            server.wait(10)
        finally:
            stop.set()
            server.kill()
            server.wait()
            for writer in writers:
                writer.join(15)
        assert server.returncode == -signal.SIGKILL

    assert len(acked) >= CYCLES, "the stream never got going"
    report, stored = asyncio.run(audit_file(archive, key_path))
    assert report.ok, report.problem
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged record(s) lost"
    assert report.size >= len(set(acked))
