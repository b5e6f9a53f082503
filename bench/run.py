"""expound's benchmark: ``python -m bench.run`` (``make bench``). Not a timed test.

Runs every section in :data:`SECTIONS`, prints one table, and writes everything measured,
with the machine it ran on, to ``bench/results/latest.json``.

A section is a function ``() -> dict``. Whatever it returns goes into the JSON under the
section's name; a ``"table"`` entry (a list of ``{"metric", "value", "unit", "target"}``
rows; ``unit`` and ``target`` may be omitted) is also printed. To add a section, append
``(name, function)`` to :data:`SECTIONS`, or drop a module exposing ``run() -> dict`` into
``bench/`` and list it in :data:`OPTIONAL_SECTIONS` (it runs when it exists).

Sections here (issue 2):

- ``shap``: the SHAP stage per single row on the demo tree model. Per row, interleaved in
  one run: ``attribute`` (encode, model output, TreeSHAP, additivity check, ranking), the
  explainer's ``explain_row`` alone, and a direct ``shap.TreeExplainer(booster)`` call
  on the same encoded row. Target: SHAP stage <= 1 ms per row.
- ``rpc``: Explain latency over a real loopback socket, 1 and 8 concurrent clients, with
  the server started in this process (port 0, temporary SQLite archive, LLM drafting
  off) on the models ``make models`` built. "non-SHAP" is each call's client-measured
  total minus the ``attribute`` stage timing its response reports: gRPC, validation,
  reasons, archive commit. Target: non-SHAP p50 <= 5 ms.
- ``kinds`` (``bench/kinds_bench.py``, issue 9): the SHAP stage per row for every model
  kind, 100 trees each, against a direct ``shap.TreeExplainer`` call on the same rows.
- ``auth`` (``bench/auth_bench.py``, issue 11): Explain p50 with TLS + token authentication
  against plaintext, same run, interleaved, 1 and 8 clients. Target: <= 1 ms added at 1.
- ``telemetry`` (``bench/telemetry_bench.py``, issue 12): Explain p50 with metrics and
  tracing on against both off, interleaved in one run. Target: at most 0.3 ms added.
- ``batch`` (``bench/batch_bench.py``, issue 13): 10,000 LLM-off decisions from a CSV
  through ``expound explain-batch`` against the same decisions one unary call at a time,
  same run: decisions/s and peak RSS of each client and of the server.
- ``scale`` (``bench/scale_bench.py``, issue 14): Explain overhead at 1, 8 and 32 clients,
  LLM-off throughput (one process; two replicas on PostgreSQL) and PostgreSQL appends by
  1, 8 and 32 writers across two replicas, each with group commit on and off; and the
  service against a gRPC server that does nothing (its floor), side by side.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
MODELS = ROOT / "artifacts" / "models"
DATA = ROOT / "data" / "german_credit.csv"
TREE_MODEL = "german-credit-gbm"

SHAP_ROWS = 1000
SHAP_WARMUP = 50
SHAP_TARGET_MS = 1.0
NON_SHAP_TARGET_MS = 5.0
RPC_CONCURRENCY = (1, 8)
RPC_CALLS_PER_CLIENT = {1: 500, 8: 100}
RPC_WARMUP = 30

Section = Callable[[], dict[str, Any]]
LIBRARIES = ("grpcio", "protobuf", "numpy", "lightgbm", "shap", "scikit-learn", "pydantic")


def percentiles(samples_us: Sequence[float]) -> dict[str, float]:
    """Median, p95, p99 and mean of samples in microseconds, rounded to 0.1 us."""
    values = np.asarray(samples_us, dtype=np.float64)
    return {
        "n": len(values),
        "p50_us": round(float(np.percentile(values, 50)), 1),
        "p95_us": round(float(np.percentile(values, 95)), 1),
        "p99_us": round(float(np.percentile(values, 99)), 1),
        "mean_us": round(float(values.mean()), 1),
    }


def applicant_rows() -> list[dict[str, Any]]:
    """The 1000 applicants of the demo data, as feature dicts."""
    from expound.models.training import load_applicants

    rows, _ = load_applicants(DATA)
    return rows


def shap_stage() -> dict[str, Any]:
    """SHAP per single row: ours (attribute, explain_row) against shap.TreeExplainer."""
    import shap

    from expound.explainers.algorithms import build_explainer
    from expound.explainers.base import attribute
    from expound.models.registry import ModelRegistry
    from expound.models.scoring import LightGBMModel

    model = ModelRegistry.from_directory(MODELS, build_explainer).get(TREE_MODEL)
    assert isinstance(model.scorer, LightGBMModel)
    explainer = model.explainer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # shap's note on LightGBM's output shape
        direct = shap.TreeExplainer(model.scorer.booster)
    rows = applicant_rows()[:SHAP_ROWS]
    timings: dict[str, list[float]] = {"attribute": [], "explain_row": [], "shap_direct": []}
    max_difference = 0.0
    clock = time.perf_counter_ns
    for index, features in enumerate(rows[:SHAP_WARMUP] + rows):
        encoded = model.encode(features)
        start = clock()
        attribute(model, explainer, features, 1e-6)
        ours = clock()
        raw = explainer.explain_row(encoded)
        alone = clock()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            theirs = np.asarray(direct.shap_values(encoded), dtype=np.float64).reshape(-1)
        done = clock()
        if index >= SHAP_WARMUP:
            timings["attribute"].append((ours - start) / 1000)
            timings["explain_row"].append((alone - ours) / 1000)
            timings["shap_direct"].append((done - alone) / 1000)
        max_difference = max(max_difference, float(np.abs(raw.contributions - theirs).max()))
    stats = {name: percentiles(samples) for name, samples in timings.items()}
    direct_p50 = stats["shap_direct"]["p50_us"]
    ratios = {
        "attribute_vs_shap_p50": round(stats["attribute"]["p50_us"] / direct_p50, 3),
        "explain_row_vs_shap_p50": round(stats["explain_row"]["p50_us"] / direct_p50, 3),
    }
    table: list[dict[str, object]] = [
        {"metric": f"shap: {name} per row {q}", "value": stats[name][f"{q}_us"], "unit": "us"}
        for name in timings
        for q in ("p50", "p95")
    ]
    table[0]["target"] = f"<= {SHAP_TARGET_MS * 1000:g} us"
    for stage in ("attribute", "explain_row"):
        table.append(
            {
                "metric": f"shap: {stage} / shap.TreeExplainer p50",
                "value": ratios[f"{stage}_vs_shap_p50"],
                "unit": "x",
            }
        )
    return {
        "model": TREE_MODEL,
        "algorithm": explainer.algorithm,
        "rows": len(rows),
        "warmup_rows": SHAP_WARMUP,
        "per_row": stats,
        "ratios": ratios,
        "max_abs_difference_vs_shap": max_difference,
        "target_ms": SHAP_TARGET_MS,
        "meets_target": stats["attribute"]["p50_us"] <= SHAP_TARGET_MS * 1000,
        "table": table,
    }


async def _rpc_run(concurrency: int, port: int, applicants: list[dict[str, Any]]) -> dict[str, Any]:
    import grpc

    from expound.clients.client import explain_request
    from expound.v1 import explain_pb2_grpc

    requests = [explain_request(TREE_MODEL, features) for features in applicants]
    totals: list[float] = []
    non_shap: list[float] = []
    stages: dict[str, list[float]] = {}

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)

        async def client(offset: int, calls: int, record: bool) -> None:
            for i in range(calls):
                request = requests[(offset + i * concurrency) % len(requests)]
                start = time.perf_counter_ns()
                response = await stub.Explain(request, timeout=30)
                total_us = (time.perf_counter_ns() - start) / 1000
                if not record:
                    continue
                by_stage = {t.stage: t.millis * 1000 for t in response.timings}
                totals.append(total_us)
                non_shap.append(total_us - by_stage["attribute"])
                for stage, micros in by_stage.items():
                    stages.setdefault(stage, []).append(micros)

        await asyncio.gather(*(client(c, RPC_WARMUP, False) for c in range(concurrency)))
        calls = RPC_CALLS_PER_CLIENT[concurrency]
        started = time.perf_counter()
        await asyncio.gather(*(client(c, calls, True) for c in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "calls": len(totals),
        "throughput_per_s": round(len(totals) / elapsed, 1),
        "total": percentiles(totals),
        "non_shap": percentiles(non_shap),
        "stages_server": {stage: percentiles(values) for stage, values in stages.items()},
    }


async def _rpc_all(applicants: list[dict[str, Any]], workdir: Path) -> list[dict[str, Any]]:
    from expound.server.app import running_server
    from expound.settings import Settings

    settings = Settings(
        port=0,
        model_dir=MODELS,
        archive_path=workdir / "archive.sqlite3",
        signing_key_path=workdir / "signing-key.pem",
        grace_seconds=0.5,
        llm_mode="off",  # the LLM stage is measured on its own; this is everything else
        metrics_port=0,  # measured in the telemetry section; the default port may be taken
    )
    async with running_server(settings) as running:
        return [await _rpc_run(c, running.port, applicants) for c in RPC_CONCURRENCY]


def rpc_latency() -> dict[str, Any]:
    """Explain latency over a real socket at 1 and 8 concurrent clients."""
    applicants = applicant_rows()
    # The archive lives where the service keeps it by default (var/), not on a tmpfs.
    (ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "var", prefix="bench-") as workdir:
        runs = asyncio.run(_rpc_all(applicants, Path(workdir)))
    table: list[dict[str, Any]] = []
    for run in runs:
        c = run["concurrency"]
        for part in ("total", "non_shap"):
            for q in ("p50", "p99"):
                row: dict[str, Any] = {
                    "metric": f"rpc: Explain {part} c={c} {q}",
                    "value": round(run[part][f"{q}_us"] / 1000, 3),
                    "unit": "ms",
                }
                if part == "non_shap" and q == "p50":
                    row["target"] = f"<= {NON_SHAP_TARGET_MS:g} ms"
                table.append(row)
        for stage in ("attribute", "archive"):
            if stage in run["stages_server"]:
                value = run["stages_server"][stage]["p50_us"] / 1000
                table.append(
                    {"metric": f"rpc: {stage} stage c={c} p50", "value": value, "unit": "ms"}
                )
        table.append(
            {
                "metric": f"rpc: throughput c={c}",
                "value": run["throughput_per_s"],
                "unit": "calls/s",
            }
        )
    return {
        "model": TREE_MODEL,
        "transport": "grpc.aio over 127.0.0.1, client and server in one process and event loop",
        "archive": "sqlite (WAL, synchronous=FULL) under var/",
        "llm": "off",
        "runs": runs,
        "target_non_shap_p50_ms": NON_SHAP_TARGET_MS,
        "meets_target": all(run["non_shap"]["p50_us"] <= NON_SHAP_TARGET_MS * 1000 for run in runs),
        "table": table,
    }


SECTIONS: list[tuple[str, Section]] = [("shap", shap_stage), ("rpc", rpc_latency)]

# Sections other modules provide: (name, module exposing ``run() -> dict``), run if present.
OPTIONAL_SECTIONS: list[tuple[str, str]] = [
    ("archive", "bench.archive_bench"),
    ("llm", "bench.llm_bench"),
    ("overload", "bench.overload_bench"),
    ("kinds", "bench.kinds_bench"),
    ("auth", "bench.auth_bench"),
    ("telemetry", "bench.telemetry_bench"),
    ("batch", "bench.batch_bench"),
    ("scale", "bench.scale_bench"),
    ("ray", "bench.ray_bench"),
]


def available_sections() -> list[tuple[str, Section]]:
    """The built-in sections, then the optional ones whose module exists."""
    sections = list(SECTIONS)
    for name, module in OPTIONAL_SECTIONS:
        if importlib.util.find_spec(module) is not None:
            sections.append((name, importlib.import_module(module).run))
    return sections


def machine() -> dict[str, Any]:
    """What the figures were measured on."""

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "libraries": {package: version(package) for package in LIBRARIES},
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        # Other processes share the cores; a high load makes every figure slower.
        "load_average_1_5_15": list(os.getloadavg()),
    }


def table_rows(name: str, section: dict[str, Any]) -> list[dict[str, Any]]:
    """A section's table, or its numeric figures (two levels deep) when it has none."""
    if "table" in section:
        return list(section["table"])
    rows = []
    for key, value in section.items():
        nested = value if isinstance(value, dict) else {"": value}
        for inner, figure in nested.items():
            if isinstance(figure, (int, float)) and not isinstance(figure, bool):
                label = f"{key}.{inner}" if inner else key
                rows.append({"metric": f"{name}: {label}", "value": figure})
    return rows


def print_table(results: dict[str, Any]) -> None:
    """One line per metric of every section."""
    rows = [
        row
        for name, section in results.items()
        if name not in ("machine", "machine_by_section") and isinstance(section, dict)
        for row in table_rows(name, section)
    ]
    width = max((len(row["metric"]) for row in rows), default=10)
    print(f"{'metric':<{width}}  {'value':>12}  {'unit':<8}  target")
    for row in rows:
        value = row["value"]
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        unit, target = row.get("unit", ""), row.get("target", "")
        print(f"{row['metric']:<{width}}  {shown:>12}  {unit:<8}  {target}".rstrip())


def main(argv: Sequence[str] | None = None) -> None:
    """Runs every section, or only those named (``python -m bench.run overload auth``).

    A partial run replaces only its sections in ``latest.json``, each section keeping the
    machine it was measured on under ``machine_by_section``.
    """
    wanted = list(sys.argv[1:] if argv is None else argv)
    sections = available_sections()
    unknown = set(wanted) - {name for name, _ in sections}
    if unknown:
        names = ", ".join(name for name, _ in sections)
        raise SystemExit(f"no section {sorted(unknown)}; sections: {names}")
    if not (MODELS / TREE_MODEL / "manifest.json").is_file():
        raise SystemExit(f"no demo models under {MODELS}: run `make models` first")
    here = machine()
    results: dict[str, Any] = {"machine": here}
    if wanted and RESULTS.is_file():
        results = json.loads(RESULTS.read_text())
        results.setdefault("machine_by_section", {})
    for name, section in sections:
        if wanted and name not in wanted:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = section()
        if wanted:
            results.setdefault("machine_by_section", {})[name] = here
    here["load_average_after"] = list(os.getloadavg())
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
