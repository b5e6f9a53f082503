"""Prometheus metrics, scraped over HTTP from a real server on loopback."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

import expound
from expound.archive.memory import open_memory
from expound.clients.client import explain_request
from expound.domain import ExplainRequest
from expound.errors import LLMError, Overloaded, StartupError
from expound.generators.drafting import Drafter, DraftingConfig
from expound.generators.fake import FakeGenerator
from expound.llm.client import LLM_BAD_RESPONSE, LLM_UNAVAILABLE, CompletionsClient
from expound.models.registry import ModelRegistry
from expound.observability.hooks import SHED_CALLS, SHED_LLM_QUEUE
from expound.observability.metrics import ServiceMetrics
from expound.observability.telemetry import Telemetry
from expound.pipeline.admission import Admission
from expound.pipeline.explain import Pipeline
from expound.pipeline.selection import ALL_UNFAITHFUL
from expound.rankers.embedding import EmbeddingRanker, HashingEmbedder
from expound.server.app import RunningServer, running_server
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM, ROOT
from tests.support.archive_backends import fixed_signer
from tests.support.pipelines import PIPELINE
from tests.support.scrape import eventually, parse, scrape
from tests.support.server_process import free_port


@pytest.fixture
async def metered(settings: Settings) -> AsyncIterator[RunningServer]:
    """A server with metrics on a free port, probing the archive every 50 ms."""
    settings = settings.model_copy(
        update={"metrics_port": free_port(), "metrics_archive_interval_s": 0.05}
    )
    async with running_server(settings) as running:
        yield running


async def test_calls_stages_and_the_archive_are_counted(
    metered: RunningServer, denied_applicant: dict[str, Any]
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{metered.port}") as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        answers = [await stub.Explain(explain_request(GBM, denied_applicant)) for _ in range(2)]
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Explain(explain_request("", denied_applicant))
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetRecord(pb.GetRecordRequest(record_id="no-such-record"))
        # A proof makes the archive sign a checkpoint, whose age is then served.
        await stub.GetRecord(
            pb.GetRecordRequest(record_id=answers[0].record_id, include_proof=True)
        )

    async def checkpoint_seen() -> bool:
        return not math.isnan(
            (await scrape(metered.metrics_port)).value("expound_archive_checkpoint_age_seconds")
        )

    await eventually(checkpoint_seen)
    seen = await scrape(metered.metrics_port)
    assert seen.value("expound_calls_total", rpc="Explain", code="OK") == 2
    assert seen.value("expound_calls_total", rpc="Explain", code="INVALID_ARGUMENT") == 1
    assert seen.value("expound_calls_total", rpc="GetRecord", code="NOT_FOUND") == 1
    assert seen.value("expound_calls_total", rpc="GetRecord", code="OK") == 1
    assert seen.value("expound_call_duration_seconds_count", rpc="Explain") == 3
    # One histogram series per timing the answer carries, each observed once per answer.
    stages = {t.stage for t in answers[0].timings}
    assert stages >= {"validate", "attribute", "reasons", "archive"}
    for stage in stages:
        assert seen.value("expound_stage_duration_seconds_count", stage=stage) == 2
    assert seen.value("expound_stage_duration_seconds_sum", stage="archive") > 0
    assert seen.value("expound_archive_appends_total", outcome="committed") == 2
    assert seen.value("expound_archive_appends_total", outcome="failed") == 0
    assert seen.value("expound_archive_records") == 2
    assert 0 <= seen.value("expound_archive_checkpoint_age_seconds") < 60
    assert seen.value("expound_explain_in_flight") == 0
    assert seen.value("expound_llm_queue_depth") == 0
    assert seen.total("expound_shed_calls_total") == 0
    assert seen.total("expound_fallbacks_total") == 0


async def test_a_metrics_port_in_use_is_a_one_line_startup_error(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError) as caught:
            async with running_server(settings.model_copy(update={"metrics_port": port})):
                pass
    message = str(caught.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port}" in message and "EXPOUND_METRICS_PORT" in message


def _refused(admission: Admission, drafts: bool) -> None:
    with pytest.raises(Overloaded), admission.admitted(drafts=drafts):
        pass


def test_shed_calls_are_counted_by_the_bound_reached() -> None:
    metrics = ServiceMetrics()
    admission = Admission(2, 1, 1.0, Telemetry(metrics))
    with admission.admitted(drafts=True), admission.admitted(drafts=False):
        _refused(admission, drafts=False)
    with admission.admitted(drafts=True):
        _refused(admission, drafts=True)
    value = metrics.registry.get_sample_value
    assert value("expound_shed_calls_total", {"reason": SHED_CALLS}) == 1
    assert value("expound_shed_calls_total", {"reason": SHED_LLM_QUEUE}) == 1


async def _explain_with(
    registry: ModelRegistry, generator: FakeGenerator, features: dict[str, Any]
) -> tuple[ServiceMetrics, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    metrics = ServiceMetrics()
    archive = await open_memory(fixed_signer(Ed25519PrivateKey.generate()))
    config = DraftingConfig(
        mode="constrained", decoding="grammar", max_tokens=200, temperature=0.8, timeout_s=5.0
    )
    pipeline = Pipeline(
        registry,
        archive,
        replace(PIPELINE, default_candidates=2),
        drafter=Drafter(generator, config),
        ranker=EmbeddingRanker(HashingEmbedder()),
        observer=Telemetry(metrics),
    )
    answer = await pipeline.explain(ExplainRequest(model_id=GBM, features=features))
    await archive.aclose()
    return metrics, answer


async def test_fallbacks_and_gate_rejections_are_counted_by_kind(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    unfaithful = ["Your application was approved.", "You were approved because of your age."]
    metrics, answer = await _explain_with(registry, FakeGenerator(unfaithful), denied_applicant)
    assert answer.fallback_reason == ALL_UNFAITHFUL
    value = metrics.registry.get_sample_value
    assert value("expound_fallbacks_total", {"reason": ALL_UNFAITHFUL}) == 1
    # Each rejected draft counts once per kind of violation it has, as the answer lists them.
    expected: dict[str, int] = {}
    for candidate in answer.candidates:
        for kind in {v.split("[", 1)[0] for v in candidate.violations}:
            expected[kind] = expected.get(kind, 0) + 1
    assert expected, "the drafts were meant to be rejected"
    for kind, count in expected.items():
        assert value("expound_gate_rejections_total", {"kind": kind}) == count
    assert value("expound_stage_duration_seconds_count", {"stage": "draft"}) == 1

    failing = FakeGenerator(error=LLMError("connection refused", LLM_UNAVAILABLE))
    metrics, answer = await _explain_with(registry, failing, denied_applicant)
    assert (
        metrics.registry.get_sample_value("expound_fallbacks_total", {"reason": LLM_UNAVAILABLE})
        == 1
    )


async def test_llm_latency_and_tokens_come_from_each_answer() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if b'"fail"' in request.content:
            return httpx.Response(500, text="boom")
        return httpx.Response(
            200,
            json={
                "choices": [{"index": 0, "text": "x", "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42},
            },
        )

    metrics = ServiceMetrics()
    client = CompletionsClient(
        "http://llm.test", transport=httpx.MockTransport(answer), observer=Telemetry(metrics)
    )
    body = {"model": "m", "prompt": "p", "n": 1, "max_tokens": 40}
    await client.complete(body, timeout_s=5)
    await client.complete(body, timeout_s=5)
    with pytest.raises(LLMError):
        await client.complete({**body, "model": "fail"}, timeout_s=5)
    await client.aclose()
    value = metrics.registry.get_sample_value
    assert value("expound_llm_tokens_total", {"client": "LLM", "kind": "prompt"}) == 24
    assert value("expound_llm_tokens_total", {"client": "LLM", "kind": "completion"}) == 60
    ok = {"client": "LLM", "outcome": "OK"}
    failed = {"client": "LLM", "outcome": LLM_BAD_RESPONSE}
    assert value("expound_llm_request_duration_seconds_count", ok) == 2
    assert value("expound_llm_request_duration_seconds_count", failed) == 1
    assert value("expound_llm_request_duration_seconds_sum", ok) > 0


@pytest.mark.slow  # a server process of its own: about 6 s
def test_serve_as_an_operator_starts_it_serves_metrics_and_logs_json(
    models_dir: Path, tmp_path: Path
) -> None:
    metrics_port = free_port()
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("EXPOUND_")
    }
    environment |= {
        "PYTHONPATH": str(ROOT),
        "EXPOUND_LLM_MODE": "off",
        "EXPOUND_GRACE_SECONDS": "0",
        "EXPOUND_SIGNING_KEY_PATH": str(tmp_path / "key.pem"),
        "EXPOUND_METRICS_PORT": str(metrics_port),
    }
    paths = ["--model-dir", str(models_dir), "--archive", str(tmp_path / "a.sqlite3")]
    server = subprocess.Popen(
        [sys.executable, "-m", "expound.clients.cli", "serve", "--port", "0", *paths],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline().decode()
        assert f"metrics: http://127.0.0.1:{metrics_port}/metrics" in banner, banner
        page = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert parse(page).value("expound_build_info", version=expound.__version__) == 1
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr.decode()
    lines = [json.loads(line) for line in stderr.decode().splitlines()]  # JSON by default
    assert any(line["message"] == "shutting down" for line in lines)


DASHBOARD = ROOT / "ops" / "grafana" / "expound.json"
# Words of PromQL that look like names: functions, aggregations and their modifiers.
PROMQL_WORDS = frozenset(
    {"sum", "max", "min", "count", "avg", "rate", "increase", "histogram_quantile", "by",
     "without", "le"}
)  # fmt: skip


def _queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


async def test_every_dashboard_query_uses_metrics_the_service_serves(
    metered: RunningServer, denied_applicant: dict[str, Any]
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{metered.port}") as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        await stub.Explain(explain_request(GBM, denied_applicant))
    served = await scrape(metered.metrics_port)
    queries = _queries()
    assert len(queries) >= 10
    for query in queries:
        # Label values and ranges ("[$__rate_interval]") are not names; nor are the labels
        # grouped by or matched on, checked below.
        bare = re.sub(r'"[^"]*"|\[[^\]]*\]', "", query)
        grouped = re.findall(r"by \(([^)]*)\)", bare) + re.findall(r"\{([^}]*)\}", bare)
        labels = {label.strip(" =~!") for group in grouped for label in group.split(",")}
        names_only = re.sub(r"by \([^)]*\)|\{[^}]*\}", " ", bare)
        names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", names_only)) - PROMQL_WORDS
        assert names and all(n.startswith("expound_") for n in names), (query, names)
        assert names <= served.names, (query, names - served.names)
        # Where the scrape has samples to show a metric's labels, the query uses only those.
        for name in names & served.labels.keys():
            assert labels - {"le", ""} <= served.labels[name], (query, name)


async def test_a_failed_commit_is_counted_and_logged_with_its_cause(
    metered: RunningServer,
    settings: Settings,
    denied_applicant: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The archive file is the fixture's settings' one; the metered server opened it.
    with sqlite3.connect(settings.archive_path) as conn:
        conn.execute(
            "CREATE TRIGGER full_disk BEFORE INSERT ON records "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{metered.port}") as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Explain(explain_request(GBM, denied_applicant))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    seen = await scrape(metered.metrics_port)
    assert seen.value("expound_archive_appends_total", outcome="failed") == 1
    assert seen.value("expound_archive_appends_total", outcome="committed") == 0
    assert seen.value("expound_calls_total", rpc="Explain", code="UNAVAILABLE") == 1
    (line,) = [r for r in caplog.records if getattr(r, "code", "") == "UNAVAILABLE"]
    assert "disk is full" in line.cause
