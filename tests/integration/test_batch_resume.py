"""``expound explain-batch`` killed with SIGKILL mid-run and run again: every id is in the
output exactly once, and the archive holds exactly one record per id.

The CLI runs as its own process (this checkout's code), the server in this test's event
loop on a loopback socket.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pandas as pd
import pytest

from expound.clients.batch_results import read_results
from expound.models.training import load_applicants
from expound.server.app import RunningServer
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM, ROOT

pytestmark = pytest.mark.slow

ROWS = 1500


async def start_cli(service: RunningServer, source: Path, out: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "expound.clients.cli",
        "--target",
        f"127.0.0.1:{service.port}",
        "explain-batch",
        str(source),
        "--model",
        GBM,
        "--out",
        str(out),
        "--flush-rows",
        "100",
        "--concurrency",
        "8",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_killed_and_rerun_every_id_once_and_one_record_each(
    service: RunningServer, stub: explain_pb2_grpc.ExplainServiceStub, tmp_path: Path
) -> None:
    applicants, _ = load_applicants(ROOT / "data" / "german_credit.csv")
    frame = pd.DataFrame([applicants[n % len(applicants)] for n in range(ROWS)])
    frame.insert(0, "id", [f"row-{n}" for n in range(ROWS)])
    source, out = tmp_path / "portfolio.csv", tmp_path / "results"
    frame.to_csv(source, index=False)

    first = await start_cli(service, source, out)
    # Killed once a few parts are on disk and more results are on their way.
    while len(list(out.glob("part-*.parquet"))) < 3:
        assert first.returncode is None, "the run ended before it could be killed"
        await asyncio.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    assert await first.wait() == -signal.SIGKILL
    before = read_results(out)
    assert 0 < len(before) < ROWS
    assert before["id"].is_unique

    second = await start_cli(service, source, out)
    _, errors = await second.communicate()
    assert second.returncode == 0, errors.decode()
    assert f"already done of {ROWS}" in errors.decode()

    results = read_results(out)
    assert sorted(results["id"]) == sorted(frame["id"])  # no gap, no duplicate
    assert results["error_code"].isna().all()
    assert results["record_id"].is_unique
    counts: dict[str, int] = {}
    token = ""
    while True:
        page = await stub.ListRecords(pb.ListRecordsRequest(page_size=500, page_token=token))
        for record in page.records:
            counts[record.decision_id] = counts.get(record.decision_id, 0) + 1
        token = page.next_page_token
        if not token:
            break
    assert counts == dict.fromkeys(frame["id"], 1)
