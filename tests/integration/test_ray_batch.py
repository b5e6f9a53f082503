"""``expound explain-batch --engine ray`` on a local Ray cluster of 2 workers.

The CLI runs as its own process (this checkout's code), as an operator would run it: the
service's settings in its environment, the workers each running the service on them and
appending to one SQLite log. Checked against the gRPC engine on the same rows, resumed after
losing result parts, and audited. The CSV is read in small blocks, so a bad cell in a late
block fails its own row, not the read.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from expound.archive.audit import audit
from expound.archive.checkpoint import load_private_key
from expound.archive.retention import RetentionPolicy
from expound.archive.sqlite import open_sqlite
from expound.clients.batch_results import read_results
from expound.server.app import running_server
from expound.settings import Settings
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM, ROOT
from tests.unit.test_batch_cli import BAD_ROW, applicants_csv, records_by_decision, run_cli

pytestmark = pytest.mark.slow

ROWS = 120
LATE_BAD_ROW = 110  # its duration is "lots": in the file's last read block
# Ray Data reads a CSV in pyarrow's blocks of 1 MiB; these 120 rows (about 25 KiB) are read
# in blocks of 4 KiB instead, so that the bad cell is blocks after the first.
SMALL_BLOCKS = (
    "import functools, sys, pyarrow.csv, ray.data; "
    "ray.data.read_csv = functools.partial(ray.data.read_csv, "
    "read_options=pyarrow.csv.ReadOptions(block_size=4096, use_threads=False)); "
    "from expound.clients.cli import main; sys.exit(main(sys.argv[1:]))"
)


def ray_cli(home: Path, models_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EXPOUND_HOME": str(home),
        "EXPOUND_MODEL_DIR": str(models_dir),
        "EXPOUND_LLM_MODE": "off",
        "EXPOUND_METRICS_PORT": "0",
    }
    return subprocess.run(
        [sys.executable, "-c", SMALL_BLOCKS, "explain-batch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


async def audited(settings: Settings) -> tuple[bool, str, int, int]:
    """The audit's verdict, the log's size and the size its latest checkpoint covers."""
    store = await open_sqlite(settings.archive_path, None, RetentionPolicy())
    try:
        report = await audit(
            await store.read_log(), load_private_key(settings.signing_key_path).public_key()
        )
        head = await store.head()
    finally:
        await store.aclose()
    covered = head.checkpoint.size if head.checkpoint is not None else 0
    return report.ok, report.problem, head.size, covered


def test_two_ray_workers_match_the_grpc_engine_resume_and_leave_an_audited_log(
    settings: Settings, models_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "applicants.csv"
    ids = applicants_csv(source, rows=ROWS)
    cells = pd.read_csv(source, dtype=str, keep_default_na=False)
    cells.loc[LATE_BAD_ROW, "duration_months"] = "lots"
    cells.to_csv(source, index=False)
    assert source.stat().st_size > 4 * 4096
    bad_ids = {ids[BAD_ROW], ids[LATE_BAD_ROW]}
    home = tmp_path / "ray-home"
    out = tmp_path / "ray-results"
    args = [str(source), "--engine", "ray", "--workers", "2", "--model", GBM]
    args += ["--out", str(out), "--id-column", "applicant", "--flush-rows", "20"]

    first = ray_cli(home, models_dir, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"{ROWS - 2} answered, 2 failed" in first.stderr, first.stderr[-2000:]
    ray_rows = read_results(out).set_index("id")
    assert sorted(ray_rows.index) == sorted(ids)
    bad = ray_rows.loc[ids[BAD_ROW]]
    assert bad["error_code"] == "INVALID_ARGUMENT"
    assert [f.split(";")[0] for f in bad["error_fields"]] == ["features[purpose]: unknown category"]
    late = ray_rows.loc[ids[LATE_BAD_ROW]]
    assert list(late["error_fields"]) == ["features[duration_months]: must be a number (integer)"]

    # The same rows through one server over gRPC: the same decisions, reasons and texts.
    grpc_settings = settings.model_copy(update={"model_dir": models_dir})
    grpc_out = tmp_path / "grpc-results"

    async def through_grpc() -> None:
        async with running_server(grpc_settings) as service:
            code = await run_cli(
                service, str(source), "--model", GBM, "--out", str(grpc_out),
                "--id-column", "applicant",
            )  # fmt: skip
            assert code == 0

    asyncio.run(through_grpc())
    grpc_rows = read_results(grpc_out).set_index("id").loc[ray_rows.index]
    for column in ("decision", "score", "adverse", "selected_text", "error_code"):
        assert ray_rows[column].equals(grpc_rows[column]), column
    for column in ("reason_codes", "reasons"):
        listed = [
            [None if v is None else list(v) for v in rows[column]] for rows in (ray_rows, grpc_rows)
        ]
        assert listed[0] == listed[1], column

    # Every answered row is archived once, by the workers, under a signed checkpoint.
    ray_settings = Settings(home=home, model_dir=models_dir, llm_mode="off", metrics_port=0)
    ok, problem, size, covered = asyncio.run(audited(ray_settings))
    assert ok, problem
    assert size == covered == ROWS - 2

    # Parts lost (as in a kill before they were flushed): the rerun redoes just those rows,
    # and the archive replays their records instead of writing them again.
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) >= 3
    lost = set(pd.read_parquet(parts[-1])["id"]) | set(pd.read_parquet(parts[0])["id"])
    for part in (parts[0], parts[-1]):
        part.unlink()
    second = ray_cli(home, models_dir, *args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"{ROWS - len(lost)} already done" in second.stderr, second.stderr[-2000:]
    resumed = read_results(out).set_index("id")
    assert sorted(resumed.index) == sorted(ids), "every id exactly once"
    answered = resumed[resumed["error_code"].isna()]
    assert answered["record_id"].equals(ray_rows.loc[answered.index, "record_id"])
    ok, problem, size, covered = asyncio.run(audited(ray_settings))
    assert ok, problem
    assert size == covered == ROWS - 2, "no record written twice"

    async def one_record_per_decision() -> dict[str, int]:
        async with running_server(ray_settings) as service:
            import grpc

            async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
                return await records_by_decision(explain_pb2_grpc.ExplainServiceStub(channel))

    counts = asyncio.run(one_record_per_decision())
    assert counts == {i: 1 for i in ids if i not in bad_ids}
