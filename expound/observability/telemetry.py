"""The one object the server passes down: metrics, traces and the access log of one server.

:class:`Telemetry` is the pipeline's and the LLM client's :class:`Observer`, and the call
guard's ``call_done`` hook. Each part is optional: metrics only when a metrics port is set,
traces only when a tracer provider is (OTLP configured, or a test's); the access log always.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import grpc
import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from expound.archive.store import LogHead
from expound.llm.pool import ServerState
from expound.observability.hooks import NO_OBSERVER, Observer
from expound.observability.logs import ACCESS_LOGGER
from expound.observability.metrics import LLMServersCollector, ServiceMetrics, seconds_since
from expound.observability.tracing import Tracing, mark_call, otlp_provider
from expound.settings import Settings
from expound.times import parse_utc

access_log = logging.getLogger(ACCESS_LOGGER)
log = logging.getLogger("expound.observability")

_CODE_VALUES = {code.name: code.value[0] for code in grpc.StatusCode}


class Telemetry(Observer):
    """Metrics, traces and the access log of one server (each part optional but the log)."""

    def __init__(
        self, metrics: ServiceMetrics | None = None, tracing: Tracing | None = None
    ) -> None:
        self.metrics = metrics
        self.tracing = tracing
        self._checkpoint_at: float | None = None
        self._log_size = 0

    # -- the server side --------------------------------------------------------------

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """Interceptors to put before the call guard (the RPC's span, where tracing is on)."""
        return [self.tracing.interceptor()] if self.tracing else []

    def call_done(
        self,
        method: str,
        code: str,
        started: float,
        response: Any,
        context: grpc.aio.ServicerContext,
        request_id: str,
    ) -> None:
        """Counts, times, marks and logs one call; run by the call guard as the call ends.

        Args:
            method: the full method name.
            code: the status code's name.
            started: ``time.perf_counter()`` when the call began.
            response: the answer (None if refused); its ``record_id``, if any, is logged.
            context: the call's context (for the peer).
            request_id: the call's request id.
        """
        seconds = time.perf_counter() - started
        rpc = method.rpartition("/")[2]
        if self.metrics is not None:
            self.metrics.observe_call(rpc, code, seconds)
        if self.tracing is not None:
            mark_call(trace.get_current_span(), request_id, code, _CODE_VALUES.get(code, 2))
        if access_log.isEnabledFor(logging.INFO):
            record_id = getattr(response, "record_id", "")
            access_log.info(
                "%s %s %.2f ms",
                rpc,
                code,
                seconds * 1000,
                extra={
                    "rpc": rpc,
                    "code": code,
                    "latency_ms": round(seconds * 1000, 3),
                    "record_id": record_id if isinstance(record_id, str) else "",
                    "peer": context.peer(),
                },
            )

    def watch_admission(self, in_flight: Callable[[], int], drafting: Callable[[], int]) -> None:
        """Serves the admission counters as gauges, read at each scrape."""
        if self.metrics is not None:
            self.metrics.watch(self.metrics.in_flight, in_flight)
            self.metrics.watch(self.metrics.llm_queue, drafting)

    def watch_llm_servers(self, servers: Callable[[], Sequence[ServerState]]) -> None:
        """Serves each LLM server of the pool (``servers()``, read at each scrape)."""
        if self.metrics is not None:
            self.metrics.registry.register(LLMServersCollector(servers))

    async def watch_archive(
        self, head: Callable[[], Awaitable[LogHead]], interval_s: float
    ) -> None:
        """Reads the archive's size and latest checkpoint every ``interval_s`` until cancelled.

        Other replicas append to the same log, so the size is read, not only counted; the
        checkpoint age is computed at each scrape from the time read here.
        """
        if self.metrics is None:
            return
        metrics = self.metrics
        metrics.watch(metrics.checkpoint_age, lambda: seconds_since(self._checkpoint_at))
        while True:
            try:
                seen = await head()
            except Exception as error:  # a probe must never stop; the next one may succeed
                log.warning("archive metrics probe failed: %s", type(error).__name__)
            else:
                self._saw_log_size(seen.size)
                if seen.checkpoint is not None:
                    self._checkpoint_at = parse_utc(seen.checkpoint.timestamp).timestamp()
            await asyncio.sleep(interval_s)

    def shutdown(self) -> None:
        """Exports the spans still buffered."""
        if self.tracing is not None:
            self.tracing.shutdown()

    # -- the pipeline's observer ------------------------------------------------------

    def stage(self, name: str) -> AbstractContextManager[Any]:
        if self.tracing is None:
            return NO_OBSERVER.stage(name)
        return self.tracing.stage(name)

    def explained(
        self, timings_ms: Mapping[str, float], fallback_reason: str, rejections: Iterable[str]
    ) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        for stage, millis in timings_ms.items():
            metrics.observe_stage(stage, millis / 1000)
        if fallback_reason:
            metrics.fallbacks.labels(fallback_reason).inc()
        for kind in rejections:
            metrics.gate_rejections.labels(kind).inc()

    def archived(self, log_size: int) -> None:
        if self.metrics is not None:
            self.metrics.committed.inc()
            self._saw_log_size(log_size)

    def _saw_log_size(self, size: int) -> None:
        # The log only grows; commits finishing out of order must not move the gauge back.
        if size > self._log_size:
            self._log_size = size
            if self.metrics is not None:
                self.metrics.archive_records.set(size)

    def archive_failed(self) -> None:
        if self.metrics is not None:
            self.metrics.failed.inc()

    def shed(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.shed.labels(reason).inc()

    def llm_call(
        self,
        client: str,
        seconds: float,
        outcome: str,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        metrics.llm_seconds.labels(client, outcome).observe(seconds)
        if prompt_tokens:
            metrics.llm_tokens.labels(client, "prompt").inc(prompt_tokens)
        if completion_tokens:
            metrics.llm_tokens.labels(client, "completion").inc(completion_tokens)

    def llm_transport(
        self, transport: httpx.AsyncBaseTransport | None
    ) -> httpx.AsyncBaseTransport | None:
        return self.tracing.transport(transport) if self.tracing else transport


def build_telemetry(settings: Settings, tracer_provider: TracerProvider | None = None) -> Telemetry:
    """The telemetry ``settings`` ask for.

    Args:
        settings: metrics when ``metrics_port`` is set, traces over OTLP when
            ``otlp_endpoint`` is.
        tracer_provider: traces go to this provider instead (tests: the in-memory exporter).
    """
    metrics = ServiceMetrics() if settings.metrics_port else None
    if tracer_provider is None and settings.otlp_endpoint:
        tracer_provider = otlp_provider(settings.otlp_endpoint)
    return Telemetry(metrics, Tracing(tracer_provider) if tracer_provider is not None else None)
