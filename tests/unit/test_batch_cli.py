"""``expound explain-batch`` against a real server on a loopback socket: typed Parquet out,
per-row errors kept, resumed without a duplicate row or a second archive record."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from expound.clients.batch import read_rows
from expound.clients.batch_results import RESULT_SCHEMA, BatchInputError, read_results
from expound.clients.cli import main
from expound.models.training import load_applicants
from expound.server.app import RunningServer, running_server
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM, ROOT

ROWS = 40
BAD_ROW = 7


def applicants_csv(path: Path, rows: int = ROWS) -> list[str]:
    """A CSV of ``rows`` demo applicants with ids (row BAD_ROW has an unknown purpose)."""
    applicants, _ = load_applicants(ROOT / "data" / "german_credit.csv")
    frame = pd.DataFrame(applicants[:rows])
    frame.insert(0, "applicant", [f"app-{n:04d}" for n in range(rows)])
    frame.loc[BAD_ROW, "purpose"] = "spaceship"
    frame.to_csv(path, index=False)
    return list(frame["applicant"])


async def run_cli(service: RunningServer, *args: str) -> int:
    # The CLI is synchronous: it runs on a thread, the server on this event loop.
    argv = ["--target", f"127.0.0.1:{service.port}", "explain-batch", *args]
    return await asyncio.to_thread(main, argv)


async def records_by_decision(stub: explain_pb2_grpc.ExplainServiceStub) -> dict[str, int]:
    counts: dict[str, int] = {}
    token = ""
    while True:
        page = await stub.ListRecords(pb.ListRecordsRequest(page_size=500, page_token=token))
        for record in page.records:
            counts[record.decision_id] = counts.get(record.decision_id, 0) + 1
        token = page.next_page_token
        if not token:
            return counts


async def test_a_csv_becomes_typed_parquet_with_its_errors_and_resumes_without_duplicates(
    service: RunningServer,
    stub: explain_pb2_grpc.ExplainServiceStub,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, out = tmp_path / "applicants.csv", tmp_path / "results.parquet"
    ids = applicants_csv(source)
    args = (str(source), "--model", GBM, "--out", str(out), "--id-column", "applicant")
    assert await run_cli(service, *args, "--flush-rows", "10", "--concurrency", "4") == 0
    assert "39 answered, 1 failed (1 INVALID_ARGUMENT), 0 already done of 40;" in (
        capsys.readouterr().err
    )
    results = read_results(out)
    assert list(results["id"]) == ids  # the input's order, each id once
    # The folder reads as one dataset with Parquet readers as they come (the run marker's
    # name is one they skip; "batch.json" made pandas fail).
    assert sorted(pd.read_parquet(out)["id"]) == sorted(ids)
    assert pq.read_schema(sorted(out.glob("part-*.parquet"))[0]).equals(RESULT_SCHEMA)
    assert len(list(out.glob("part-*.parquet"))) == 4  # 40 rows, 10 per part
    bad = results.set_index("id").loc[ids[BAD_ROW]]
    assert bad["error_code"] == "INVALID_ARGUMENT"
    assert [f.split(";")[0] for f in bad["error_fields"]] == ["features[purpose]: unknown category"]
    assert pd.isna(bad["record_id"])
    good = results[results["error_code"].isna()]
    assert len(good) == ROWS - 1
    assert good["archived"].all() and good["score"].between(0, 1).all()
    assert set(good["decision"]) <= {"approve", "decline"}
    denied = good[good["adverse"]]
    assert len(denied) and all(len(codes) >= 1 for codes in denied["reason_codes"])
    assert all(isinstance(text, str) and text for text in good["selected_text"])
    archived = await records_by_decision(stub)
    assert archived == {i: 1 for i in ids if i != ids[BAD_ROW]}

    # A kill after the third part: the fourth part's results are lost, their records are not.
    last = sorted(out.glob("part-*.parquet"))[-1]
    lost = pq.read_table(last).to_pandas()
    last.unlink()
    assert await run_cli(service, *args, "--flush-rows", "10") == 0
    assert "10 answered, 0 failed, 30 already done of 40;" in capsys.readouterr().err
    again = read_results(out)
    assert sorted(again["id"]) == sorted(ids)  # every id exactly once
    redone = again.set_index("id").loc[list(lost["id"])]
    # The same records, replayed by their idempotency keys: none archived twice.
    assert list(redone["record_id"]) == list(lost["record_id"])
    assert await records_by_decision(stub) == archived
    # A run with nothing left to do sends nothing and writes no part.
    parts = sorted(out.glob("part-*.parquet"))
    assert await run_cli(service, *args) == 0
    assert sorted(out.glob("part-*.parquet")) == parts


async def test_a_what_if_batch_archives_nothing(
    service: RunningServer, stub: explain_pb2_grpc.ExplainServiceStub, tmp_path: Path
) -> None:
    source, out = tmp_path / "applicants.parquet", tmp_path / "what-if"
    csv = tmp_path / "applicants.csv"
    applicants_csv(csv, rows=12)
    read_rows(csv, "applicant").to_parquet(source)
    args = (str(source), "--model", GBM, "--out", str(out), "--id-column", "applicant")
    assert await run_cli(service, *args, "--what-if") == 0
    results = read_results(out)
    answered = results[results["error_code"].isna()]
    assert len(answered) == 11 and not answered["archived"].any()
    assert answered["record_id"].isna().all()  # no record: null, not an empty id
    assert await records_by_decision(stub) == {}
    # Archived answers are never added to a what-if folder (nor another model's).
    assert await run_cli(service, *args) == 2
    assert len(read_results(out)) == 12
    # A folder marked under the marker's old name is still known for what it holds.
    (out / "_batch.json").rename(out / "batch.json")
    assert await run_cli(service, *args) == 2
    assert await run_cli(service, *args, "--what-if") == 0
    assert not (out / "batch.json").exists() and (out / "_batch.json").exists()


def test_unusable_inputs_are_refused_naming_the_file(tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_text("id,age_years\na,30\na,40\n")
    with pytest.raises(BatchInputError, match="1 id\\(s\\) repeated in 'id': 'a'"):
        read_rows(source, "id")
    with pytest.raises(BatchInputError, match="no id column 'applicant'"):
        read_rows(source, "applicant")
    with pytest.raises(BatchInputError, match=r"expected a \.csv or \.parquet file"):
        read_rows(tmp_path / "rows.xlsx", "id")
    assert main(["explain-batch", str(source), "--model", GBM, "--out", str(tmp_path / "o")]) == 2


async def test_items_the_server_was_too_busy_for_are_sent_again(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One Explain at a time, three items of the call at once: most are shed on a pass.
    busy = settings.model_copy(
        update={"max_concurrent_explains": 1, "batch_max_in_flight": 3, "retry_after_s": 0.01}
    )
    source = tmp_path / "applicants.csv"
    ids = applicants_csv(source, rows=12)
    async with running_server(busy) as server:
        args = (str(source), "--model", GBM, "--id-column", "applicant")
        # Without retries the shed items are written as such ...
        once = tmp_path / "once"
        assert await run_cli(server, *args, "--out", str(once), "--retries", "0") == 0
        shed = read_results(once)
        assert (shed["error_code"] == "RESOURCE_EXHAUSTED").sum() >= 1
        # ... with them, they are sent again until answered, and each id is written once.
        again = tmp_path / "again"
        assert await run_cli(server, *args, "--out", str(again), "--retries", "50") == 0
        results = read_results(again)
        assert sorted(results["id"]) == sorted(ids)
        assert list(results["error_code"].dropna()) == ["INVALID_ARGUMENT"]  # row BAD_ROW
        assert "sent again (server busy)" in capsys.readouterr().err
