"""``batch`` section of ``make bench`` (issue 13): a portfolio through ``explain-batch``
against the same decisions one unary call at a time, same run.

One server (``expound serve``, LLM drafting off, a fresh SQLite archive) serves both. The
portfolio is ``ROWS`` applicants (the demo data, cycled) in a CSV with an id column.

- ``batch``: ``expound explain-batch portfolio.csv --model M --out results`` as its own
  process (the CLI path end to end: start-up, reading the CSV, the stream, the Parquet
  parts), at the CLI's default concurrency.
- ``unary``: a process that reads the same CSV the same way and calls Explain once per row,
  one call at a time, writing the same Parquet parts: what an analyst's loop around the
  client did before.

Both archive every decision (each item has an idempotency key, looked up by the server in
both modes; the key prefixes differ, so neither replays the other's records). Each client's
peak RSS comes from ``wait4`` (the process's own ``ru_maxrss``); the server's peak from its
``VmHWM`` after each mode. Throughput is rows / the client process's wall time.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.run import TREE_MODEL, applicant_rows
from bench.servers import run_client, start_llm_off_server

ROWS = 10_000


def _peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return round(int(match.group(1)) / 1024, 1) if match else float("nan")


def unary_main(target: str, source: Path, out: Path) -> None:
    """The ``unary`` client: one Explain call per row, one at a time, the same output."""
    import hashlib

    from expound.clients.batch import batch_items, read_rows
    from expound.clients.batch_results import PartWriter, result_row
    from expound.clients.client import ExplainClient
    from expound.v1 import explain_pb2 as pb

    rows = read_rows(source, "id")
    writer = PartWriter(out, flush_rows=500, flush_seconds=5.0)
    prefix = "unary-" + hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    with ExplainClient(target) as client:
        stub = client._stub  # the raw stub: the same message the batch item carries
        for item in batch_items(rows, TREE_MODEL, "id", set(), False, prefix):
            response = stub.Explain(item.request, timeout=30)
            writer.add(result_row(pb.BatchResult(item_id=item.item_id, response=response)))
    writer.flush()


def run() -> dict[str, Any]:
    """The section: throughput and peak RSS of both modes, and the server's."""
    import pandas as pd

    from expound.clients.batch_results import read_results

    applicants = applicant_rows()
    with tempfile.TemporaryDirectory(prefix="expound-batch-bench-") as tmp:
        workdir = Path(tmp)
        frame = pd.DataFrame([applicants[n % len(applicants)] for n in range(ROWS)])
        frame.insert(0, "id", [f"row-{n:05d}" for n in range(ROWS)])
        source = workdir / "portfolio.csv"
        frame.to_csv(source, index=False)
        server, port, _ = start_llm_off_server(workdir)
        target = f"127.0.0.1:{port}"
        measured: dict[str, dict[str, Any]] = {}
        try:
            for mode in ("unary", "batch"):
                out = workdir / f"{mode}-results"
                if mode == "batch":
                    args = ["-m", "expound.clients.cli", "--target", target, "explain-batch"]
                    args += [str(source), "--model", TREE_MODEL, "--out", str(out)]
                else:
                    args = ["-m", "bench.batch_bench", target, str(source), str(out)]
                run_ = run_client(args)
                results = read_results(out)
                answered = int(results["error_code"].isna().sum())
                if answered != ROWS or not results["id"].is_unique:
                    raise RuntimeError(f"{mode}: {answered} of {ROWS} answered")
                measured[mode] = {
                    "decisions": answered,
                    "seconds": round(run_["seconds"], 2),
                    "decisions_per_s": round(answered / run_["seconds"], 1),
                    "client_peak_rss_mib": run_["peak_rss_mib"],
                    "server_peak_rss_mib_after": _peak_rss_mib(server.pid),
                }
        finally:
            server.terminate()
            server.wait(timeout=30)
    speedup = measured["batch"]["decisions_per_s"] / measured["unary"]["decisions_per_s"]
    table = [
        {"metric": f"{mode}: {key}", "value": value, "unit": unit}
        for mode in ("unary", "batch")
        for key, unit in (
            ("decisions_per_s", "1/s"),
            ("client_peak_rss_mib", "MiB"),
            ("server_peak_rss_mib_after", "MiB"),
        )
        for value in (measured[mode][key],)
    ]
    table.append({"metric": "batch / unary throughput", "value": round(speedup, 2), "unit": "x"})
    return {"rows": ROWS, "modes": measured, "speedup": round(speedup, 2), "table": table}


if __name__ == "__main__":
    unary_main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
