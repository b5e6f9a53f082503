"""What metrics and tracing cost an Explain call (issue 12's "Metrics and tracing overhead").

Two servers in this process, on the same models and the same kind of archive, LLM drafting
off: one with Prometheus metrics (served on a port of its own) and OpenTelemetry tracing (a
batch span processor, as with OTLP; its exporter drops the spans, so the collector's network
time, spent on the processor's own thread, is not counted), one with both off. One client
calls them in turn, call by call, so both see the same machine at the same moment; the
difference of the client-measured p50s is the overhead. Target: at most 0.3 ms.

A third arm adds the JSON access line to metrics and tracing (written to /dev/null), since a
production server writes one per call: its cost is reported beside the target, not in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.run import MODELS, ROOT, TREE_MODEL, applicant_rows, percentiles
from bench.servers import free_port

CALLS_PER_ARM = 1500
WARMUP = 100
TARGET_MS = 0.3
ARMS = ("off", "metrics+tracing", "metrics+tracing+json log")


class DroppingExporter(SpanExporter):
    """Takes each batch and drops it: the export thread's cost, without a collector."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


async def _measure(workdir: Path, sink: TextIO) -> dict[str, Any]:
    import grpc

    from expound.clients.client import explain_request
    from expound.observability.logs import log_handler
    from expound.server.app import running_server
    from expound.settings import Settings
    from expound.v1 import explain_pb2_grpc

    def settings(name: str, metrics_port: int) -> Settings:
        return Settings(
            port=0,
            model_dir=MODELS,
            archive_path=workdir / f"{name}.sqlite3",
            signing_key_path=workdir / f"{name}-key.pem",
            grace_seconds=0.5,
            llm_mode="off",
            metrics_port=metrics_port,
        )

    exporter = DroppingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    requests = [explain_request(TREE_MODEL, features) for features in applicant_rows()]
    samples: dict[str, list[float]] = {arm: [] for arm in ARMS}
    access = logging.getLogger("expound.access")
    handler = log_handler("json", sink)
    logging.getLogger().addHandler(handler)
    try:
        async with contextlib.AsyncExitStack() as stack:
            off = await stack.enter_async_context(running_server(settings("off", 0)))
            on = await stack.enter_async_context(
                running_server(settings("on", free_port()), tracer_provider=provider)
            )
            stubs = {}
            for arm, server in zip(ARMS, (off, on, on), strict=True):
                channel = await stack.enter_async_context(
                    grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
                )
                stubs[arm] = explain_pb2_grpc.ExplainServiceStub(channel)
            for i in range(WARMUP + CALLS_PER_ARM):
                for arm in ARMS:
                    # Only the third arm's access lines are written.
                    access.setLevel(logging.INFO if arm == ARMS[2] else logging.WARNING)
                    request = requests[i % len(requests)]
                    started = time.perf_counter_ns()
                    await stubs[arm].Explain(request, timeout=30)
                    if i >= WARMUP:
                        samples[arm].append((time.perf_counter_ns() - started) / 1000)
    finally:
        logging.getLogger().removeHandler(handler)
        access.setLevel(logging.NOTSET)
    provider.shutdown()
    return {"stats": {arm: percentiles(values) for arm, values in samples.items()},
            "spans_exported": exporter.spans}  # fmt: skip


def run() -> dict[str, Any]:
    """The overhead section: p50 with metrics and tracing on, against both off."""
    (ROOT / "var").mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=ROOT / "var", prefix="bench-telemetry-") as workdir,
        open(os.devnull, "w") as sink,
    ):
        measured = asyncio.run(_measure(Path(workdir), sink))
    stats = measured["stats"]
    p50 = {arm: stats[arm]["p50_us"] / 1000 for arm in ARMS}
    added = round(p50[ARMS[1]] - p50[ARMS[0]], 3)
    added_with_log = round(p50[ARMS[2]] - p50[ARMS[0]], 3)
    return {
        "model": TREE_MODEL,
        "llm": "off",
        "calls_per_arm": CALLS_PER_ARM,
        "interleaved": "one client, arms called in turn, call by call, one process",
        "tracing": "SDK TracerProvider, BatchSpanProcessor, exporter dropping the spans",
        "stats": stats,
        "spans_exported": measured["spans_exported"],
        "added_p50_ms": added,
        "added_p50_with_json_log_ms": added_with_log,
        "target_added_p50_ms": TARGET_MS,
        "meets_target": added <= TARGET_MS,
        "table": [
            {"metric": "telemetry: Explain p50, both off", "value": round(p50[ARMS[0]], 3),
             "unit": "ms"},
            {"metric": "telemetry: Explain p50, metrics+tracing", "value": round(p50[ARMS[1]], 3),
             "unit": "ms"},
            {"metric": "telemetry: added p50 (metrics+tracing)", "value": added, "unit": "ms",
             "target": f"<= {TARGET_MS:g} ms"},
            {"metric": "telemetry: added p50 (+ JSON access line)", "value": added_with_log,
             "unit": "ms"},
        ],
    }  # fmt: skip


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
