"""A full disk under the real server: the call fails cleanly, the log says why, nothing is
half-written, and the service recovers when space is back (issue 12 item 6).

The server runs as a subprocess; its file-size limit (RLIMIT_FSIZE, lowered from outside
with prlimit) is set just above the archive's current files, so its next writes fail the
way they fail on a full disk, without needing a small filesystem (no mount here): the
kernel refuses the write (EFBIG where a full disk says ENOSPC), SQLite reports a failed
write ("disk I/O error"; "database or disk is full" for ENOSPC) and rolls the transaction
back itself. That automatic rollback is what once hid the cause behind "cannot rollback -
no transaction is active", with no log line at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
from pathlib import Path
from typing import Any

import grpc
import pytest

from expound.clients.client import ExplainClient
from tests.conftest import GBM
from tests.integration.test_archive_crash import audit_file
from tests.support.server_process import free_port, start_server
from tests.support.wire_status import assert_receivable, request_id

pytestmark = pytest.mark.slow


def test_a_full_disk_fails_calls_cleanly_logs_the_cause_and_recovers(
    models_dir: Path, tmp_path: Path, denied_applicant: dict[str, Any]
) -> None:
    archive = tmp_path / "archive.sqlite3"
    key_path = tmp_path / "signing-key.pem"
    log = tmp_path / "server.log"
    port = free_port()
    env = {
        **os.environ,
        "EXPOUND_MODEL_DIR": str(models_dir),
        "EXPOUND_ARCHIVE_PATH": str(archive),
        "EXPOUND_SIGNING_KEY_PATH": str(key_path),
        "EXPOUND_LLM_MODE": "off",
        "EXPOUND_PORT": str(port),
    }
    server = start_server(env, log)
    acked: list[str] = []
    refused: list[grpc.RpcError] = []
    try:
        with ExplainClient(f"127.0.0.1:{port}", timeout=10) as client:
            for _ in range(3):
                acked.append(client.explain(GBM, denied_applicant).record_id)
            files = [archive, archive.with_name(archive.name + "-wal")]
            room = max(f.stat().st_size for f in files if f.exists()) + 3001
            # Only the soft limit: lowering the hard one could not be undone without privilege.
            unlimited = resource.RLIM_INFINITY
            resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (room, unlimited))
            for _ in range(300):
                try:
                    acked.append(client.explain(GBM, denied_applicant).record_id)
                except grpc.RpcError as error:
                    refused.append(error)
                    if len(refused) == 3:
                        break
            assert refused, "the archive never filled up"
            for error in refused:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error  # type: ignore[attr-defined]
                assert "could not be committed" in (error.details() or "")  # type: ignore[attr-defined]
                assert_receivable(error)
            # Space is back: the same server commits again.
            resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (unlimited, unlimited))
            acked.append(client.explain(GBM, denied_applicant).record_id)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    # The server logs JSON, one object per line (the start-up banner is plain text).
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    for error in refused:
        mine = [line for line in lines if line.get("request_id") == request_id(error)]
        (refusal,) = [line for line in mine if line["logger"] == "expound.server"]
        assert (refusal["level"], refusal["code"]) == ("WARNING", "UNAVAILABLE"), refusal
        assert refusal["cause"] == "OperationalError: disk I/O error", refusal
        assert "cannot rollback" not in refusal["message"], refusal
        (access,) = [line for line in mine if line["logger"] == "expound.access"]
        assert access["code"] == "UNAVAILABLE" and access["rpc"] == "Explain"
    report, stored = asyncio.run(audit_file(archive, key_path))
    assert report.ok, report.problem
    assert stored == set(acked)
