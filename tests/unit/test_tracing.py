"""OpenTelemetry traces over a real loopback server, collected by the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from expound.clients.client import explain_request
from expound.llm.client import CompletionsClient
from expound.observability.telemetry import Telemetry
from expound.observability.tracing import REQUEST_ID_ATTRIBUTE, Tracing
from expound.server.app import RunningServer, running_server
from expound.settings import Settings
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM
from tests.support.scrape import eventually

EXPLAIN = "/expound.v1.ExplainService/Explain"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture
async def traced(settings: Settings, provider: TracerProvider) -> AsyncIterator[RunningServer]:
    async with running_server(settings, tracer_provider=provider) as running:
        yield running


def _rpc_span(exporter: InMemorySpanExporter, request_id: str) -> ReadableSpan:
    (span,) = [
        s
        for s in exporter.get_finished_spans()
        if s.name == EXPLAIN
        and s.attributes
        and s.attributes.get(REQUEST_ID_ATTRIBUTE) == request_id
    ]
    return span


async def test_one_explain_is_an_rpc_span_with_a_child_per_stage(
    traced: RunningServer, exporter: InMemorySpanExporter, denied_applicant: dict[str, Any]
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{traced.port}") as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        await stub.Explain(
            explain_request(GBM, denied_applicant), metadata=(("x-request-id", "trace-ok-1"),)
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Explain(
                explain_request("no-such-model", denied_applicant),
                metadata=(("x-request-id", "trace-bad-1"),),
            )

    async def both_ended() -> bool:
        names = [s.name for s in exporter.get_finished_spans()]
        return names.count(EXPLAIN) == 2

    await eventually(both_ended)
    rpc = _rpc_span(exporter, "trace-ok-1")
    assert rpc.kind == SpanKind.SERVER
    assert rpc.attributes is not None and rpc.attributes["rpc.grpc.status_code"] == 0
    assert rpc.context is not None
    children = [
        s
        for s in exporter.get_finished_spans()
        if s.parent is not None and s.parent.span_id == rpc.context.span_id
    ]
    # LLM off: no draft or rank stage. Only the stages that wait (the CPU pool, the LLM, the
    # archive) are spans; validate, facts and select compute in the loop and are only timed.
    assert [s.name for s in children] == ["decide", "plan", "archive"]
    for child in children:
        assert child.context is not None and child.context.trace_id == rpc.context.trace_id
        assert rpc.start_time is not None and child.start_time is not None
        assert rpc.end_time is not None and child.end_time is not None
        assert rpc.start_time <= child.start_time <= child.end_time <= rpc.end_time

    refused = _rpc_span(exporter, "trace-bad-1")
    assert refused.attributes is not None and refused.attributes["rpc.grpc.status_code"] == 5
    # NOT_FOUND is the caller's doing: the server span is not an error (OpenTelemetry's rule).
    assert refused.status.status_code != StatusCode.ERROR


async def test_the_idempotency_lookup_is_a_span_of_its_own(
    traced: RunningServer, exporter: InMemorySpanExporter, denied_applicant: dict[str, Any]
) -> None:
    request = explain_request(GBM, denied_applicant)
    request.idempotency_key = "trace-key-1"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{traced.port}") as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        await stub.Explain(request, metadata=(("x-request-id", "trace-key-a"),))
        await stub.Explain(request, metadata=(("x-request-id", "trace-key-b"),))

    async def both_ended() -> bool:
        return [s.name for s in exporter.get_finished_spans()].count(EXPLAIN) == 2

    await eventually(both_ended)

    def children(request_id: str) -> list[str]:
        rpc = _rpc_span(exporter, request_id)
        assert rpc.context is not None
        return [
            s.name
            for s in exporter.get_finished_spans()
            if s.parent is not None and s.parent.span_id == rpc.context.span_id
        ]

    # The first call looks the key up, then commits; the second finds it and replays.
    assert children("trace-key-a") == ["idempotency", "decide", "plan", "archive"]
    assert children("trace-key-b") == ["idempotency"]


async def test_an_llm_request_is_a_client_span_under_the_draft_stage(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [{"index": 0, "text": "x"}]})

    tracing = Tracing(provider)
    client = CompletionsClient(
        "http://llm.test", transport=httpx.MockTransport(answer), observer=Telemetry(None, tracing)
    )
    with tracing.stage("draft"):
        await client.complete({"model": "m", "prompt": "p", "n": 1, "max_tokens": 8}, 5)
    await client.aclose()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    draft = spans.pop("draft")
    (http,) = spans.values()
    assert http.kind == SpanKind.CLIENT
    assert http.parent is not None and draft.context is not None
    assert http.parent.span_id == draft.context.span_id
    assert http.attributes is not None
    assert "http://llm.test/v1/completions" in http.attributes.values()


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    """An OTLP/gRPC trace collector on loopback that keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def collector() -> Iterator[tuple[_Collector, int]]:
    collector = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield collector, port
    finally:
        server.stop(None)


async def test_spans_are_exported_over_otlp_when_an_endpoint_is_set(
    settings: Settings, collector: tuple[_Collector, int], denied_applicant: dict[str, Any]
) -> None:
    received, port = collector
    settings = settings.model_copy(update={"otlp_endpoint": f"http://127.0.0.1:{port}"})
    async with (
        running_server(settings) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        await stub.Explain(
            explain_request(GBM, denied_applicant), metadata=(("x-request-id", "otlp-1"),)
        )
    # Leaving the server flushed the batch of spans to the collector.
    spans = {}
    for request in received.requests:
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert resource["service.name"] == "expound"
            for scope_spans in resource_spans.scope_spans:
                spans.update({span.name: span for span in scope_spans.spans})
    rpc = spans[EXPLAIN]
    assert {a.key: a.value.string_value for a in rpc.attributes}[REQUEST_ID_ATTRIBUTE] == "otlp-1"
    assert not {"validate", "facts", "select"} & spans.keys()
    for stage in ("decide", "plan", "archive"):
        assert spans[stage].parent_span_id == rpc.span_id
        assert spans[stage].trace_id == rpc.trace_id
