"""OpenTelemetry traces: the RPC's span (gRPC's aio instrumentation), a span per pipeline
stage under it, and the LLM's HTTP calls (httpx's instrumentation) under the draft stage.

Tracing is off unless configured: without a tracer provider nothing is instrumented and the
pipeline's stage contexts are the no-op ones. With ``EXPOUND_OTLP_ENDPOINT`` spans are
batched and exported over OTLP/gRPC; tests pass a provider with the SDK's in-memory exporter.
The provider is the server's own, never the process-wide global one.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import grpc
import httpx
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Status, StatusCode

import expound

SERVICE_NAME = "expound"
REQUEST_ID_ATTRIBUTE = "expound.request_id"
# The status codes that mark a server span as failed (OpenTelemetry's gRPC conventions):
# the others are the caller's doing.
SERVER_ERRORS = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)


def otlp_provider(endpoint: str) -> TracerProvider:
    """A provider exporting batches of spans to the OTLP/gRPC collector at ``endpoint``.

    ``http://`` endpoints are plaintext, ``https://`` TLS (the exporter's own rule).
    """
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=service_resource())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def service_resource() -> Resource:
    """The resource naming this service and its version on every span."""
    return Resource.create({"service.name": SERVICE_NAME, "service.version": expound.__version__})


class Tracing:
    """The server's tracer: spans for stages, and the instrumentations bound to its provider."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("expound.pipeline", expound.__version__)

    def interceptor(self) -> grpc.aio.ServerInterceptor:
        """The gRPC server interceptor that opens each call's span (outermost)."""
        interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self.provider
        )
        return interceptor

    def stage(self, name: str) -> AbstractContextManager[Span]:
        """A span for one pipeline stage, a child of the current (the RPC's) span."""
        return self._tracer.start_as_current_span(name)

    def transport(self, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncBaseTransport:
        """``transport`` (httpx's default if None) with a client span per HTTP request."""
        return AsyncOpenTelemetryTransport(
            transport or httpx.AsyncHTTPTransport(), tracer_provider=self.provider
        )

    def shutdown(self) -> None:
        """Exports what is buffered and stops the provider's processors."""
        self.provider.shutdown()


def mark_call(span: Span, request_id: str, code: str, code_value: int) -> None:
    """Puts the request id and the call's real status on its span.

    The call guard answers through ``abort_with_status``, which the instrumentation does not
    see, so the status code is set here.
    """
    span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)
    span.set_attribute("rpc.grpc.status_code", code_value)
    if code in SERVER_ERRORS:
        span.set_status(Status(StatusCode.ERROR, code))
