"""``ray`` section of ``make bench`` (issue 14): a portfolio through ``explain-batch`` on a
local Ray cluster with 1 and 2 workers, against the single-process batch, same run.

The portfolio is ``ROWS`` applicants (the demo data, cycled) in a CSV; LLM drafting off;
every decision archived, each mode into a fresh SQLite archive of its own.

- ``grpc``: ``expound explain-batch`` streaming to one ``expound serve`` process (the
  single-process batch).
- ``ray-1``, ``ray-2``: ``expound explain-batch --engine ray --workers N``: a local Ray
  cluster started by the command, each worker running the service and appending to the
  one archive.

Throughput is rows / the CLI process's wall time, start-up included (Ray's own start and
each worker loading the models: about 10 to 20 s here), so it is what an operator waits.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from bench.run import MODELS, TREE_MODEL, applicant_rows
from bench.servers import run_client, start_llm_off_server

ROWS = 5_000
MODES = ("grpc", "ray-1", "ray-2")


def run() -> dict[str, Any]:
    """The section: decisions per second of each mode."""
    import pandas as pd

    from expound.clients.batch_results import read_results

    applicants = applicant_rows()
    measured: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="expound-ray-bench-") as tmp:
        workdir = Path(tmp)
        frame = pd.DataFrame([applicants[n % len(applicants)] for n in range(ROWS)])
        frame.insert(0, "id", [f"row-{n:05d}" for n in range(ROWS)])
        source = workdir / "portfolio.csv"
        frame.to_csv(source, index=False)
        for mode in MODES:
            out = workdir / f"{mode}-results"
            args = ["-m", "expound.clients.cli"]
            server = None
            if mode == "grpc":
                server, port, _ = start_llm_off_server(workdir / "grpc")
                args += ["--target", f"127.0.0.1:{port}", "explain-batch", str(source)]
                env: dict[str, str] = {}
            else:
                workers = mode.split("-")[1]
                args += ["explain-batch", str(source), "--engine", "ray", "--workers", workers]
                env = {
                    "EXPOUND_HOME": str(workdir / mode),
                    "EXPOUND_MODEL_DIR": str(MODELS),
                    "EXPOUND_LLM_MODE": "off",
                    "EXPOUND_METRICS_PORT": "0",
                }
            args += ["--model", TREE_MODEL, "--out", str(out)]
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                run_ = run_client(args)
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
                if server is not None:
                    server.terminate()
                    server.wait(timeout=30)
            results = read_results(out)
            answered = int(results["error_code"].isna().sum())
            if answered != ROWS or not results["id"].is_unique:
                raise RuntimeError(f"{mode}: {answered} of {ROWS} answered")
            measured[mode] = {
                "decisions": answered,
                "seconds": round(run_["seconds"], 2),
                "decisions_per_s": round(answered / run_["seconds"], 1),
            }
    table = [
        {
            "metric": f"ray: {mode} decisions/s",
            "value": measured[mode]["decisions_per_s"],
            "unit": "1/s",
        }
        for mode in MODES
    ]
    return {"rows": ROWS, "llm": "off", "modes": measured, "table": table}
