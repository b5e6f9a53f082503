"""Overload figures (issue 12): ``python -m bench.overload_bench``, or a ``make bench`` section.

Two scenarios, each against a server in its own process (default settings, port 0, a fresh
SQLite archive, the models ``make models`` built, or the demo models trained afresh):

- ``burst``: 3,000 Explain calls at once, LLM drafting off, 30 s deadlines.
- ``hanging_llm``: 256 calls at once with 5 s deadlines against an LLM that accepts the
  request and never answers.

For each: the count of answers by status code, records committed against OK answers,
the p50 and p99 latency of the accepted (OK) calls, and the server's peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import statistics
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc

from bench.run import DATA, MODELS, TREE_MODEL
from expound.archive.store import RecordFilter
from expound.clients.client import explain_request
from expound.pipeline.records import Caller
from expound.server.app import running_server
from expound.settings import Settings
from expound.v1 import explain_pb2_grpc

APPLICANT = Path(__file__).resolve().parent.parent / "examples" / "applicant_denied.json"
CHANNELS = 8
SCENARIOS = {"burst": (3000, 30.0), "hanging_llm": (256, 5.0)}


async def _hanging_llm() -> tuple[asyncio.Server, str]:
    """An HTTP server that reads each request and never answers it."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def _serve(models: str, scenario: str, conn: Connection) -> None:
    home = Path(tempfile.mkdtemp(prefix="expound-overload-"))
    update: dict[str, Any] = {"llm_mode": "off"}
    if scenario == "hanging_llm":
        _, url = await _hanging_llm()
        update = {
            "llm_mode": "constrained",
            "llm_base_url": url,
            "ranker_embedder": "hashing",
            "llm_warmup": False,  # a warm-up would hold one LLM slot on the hanging server
        }
    settings = Settings(
        port=0,
        model_dir=Path(models),
        archive_path=home / "archive.sqlite3",
        signing_key_path=home / "key.pem",
        grace_seconds=1.0,
        metrics_port=0,  # no /metrics: the default port may be a running server's
        **update,
    )
    async with running_server(settings) as running:
        conn.send(running.port)
        await asyncio.to_thread(conn.recv)  # the client is done
        records, token = 0, ""
        while True:
            page = await running.records.list_records(
                RecordFilter(), 500, token, Caller("bench", "")
            )
            records, token = records + len(page.records), page.next_page_token
            if not token:
                break
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send({"records": records, "server_rss_peak_mb": round(rss_mb, 1)})


def _server_process(models: str, scenario: str, conn: Connection) -> None:
    asyncio.run(_serve(models, scenario, conn))


async def _burst(port: int, calls: int, deadline_s: float) -> tuple[Counter[str], list[float]]:
    applicant = json.loads(APPLICANT.read_text())
    request = explain_request(TREE_MODEL, applicant)
    codes: Counter[str] = Counter()
    accepted: list[float] = []
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(CHANNELS)]
    for channel in channels:
        await channel.channel_ready()
    stubs = [explain_pb2_grpc.ExplainServiceStub(c) for c in channels]

    async def one(i: int) -> None:
        started = time.perf_counter()
        try:
            await stubs[i % CHANNELS].Explain(request, timeout=deadline_s)
        except grpc.aio.AioRpcError as error:
            codes[error.code().name] += 1
            return
        accepted.append(time.perf_counter() - started)
        codes["OK"] += 1

    await asyncio.gather(*(one(i) for i in range(calls)))
    for channel in channels:
        await channel.close()
    return codes, accepted


def _models() -> str:
    if MODELS.exists():
        return str(MODELS)
    from expound.models.training import build_demo_models

    out = Path(tempfile.mkdtemp(prefix="expound-models-"))
    build_demo_models(DATA, out)
    return str(out)


def scenario(name: str, models: str) -> dict[str, Any]:
    """Runs one scenario against a fresh server process; its figures."""
    calls, deadline_s = SCENARIOS[name]
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=_server_process, args=(models, name, theirs))
    server.start()
    try:
        port = ours.recv()
        started = time.perf_counter()
        codes, accepted = asyncio.run(_burst(port, calls, deadline_s))
        wall = time.perf_counter() - started
        ours.send("done")
        server_side = ours.recv()
    finally:
        server.join(30)
    ordered = sorted(accepted)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] if ordered else 0.0
    return {
        "calls": calls,
        "deadline_s": deadline_s,
        "codes": dict(codes),
        "ok": codes["OK"],
        **server_side,
        "accepted_p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else 0.0,
        "accepted_p99_ms": round(p99 * 1000, 1),
        "wall_s": round(wall, 2),
    }


def run() -> dict[str, Any]:
    """Both scenarios; a table of the figures."""
    models = _models()
    results = {name: scenario(name, models) for name in SCENARIOS}
    table = []
    for name, r in results.items():
        table += [
            {"metric": f"{name}: codes", "value": json.dumps(r["codes"], sort_keys=True)},
            {"metric": f"{name}: records / OK", "value": f"{r['records']} / {r['ok']}"},
            {"metric": f"{name}: accepted p99", "value": r["accepted_p99_ms"], "unit": "ms"},
            {"metric": f"{name}: server RSS peak", "value": r["server_rss_peak_mb"], "unit": "MB"},
        ]
    return {**results, "table": table}


if __name__ == "__main__":
    print(json.dumps({k: v for k, v in run().items() if k != "table"}, indent=2))
