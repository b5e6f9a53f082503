"""The service's Prometheus metrics, on a registry of their own, served on a port of their own.

Every metric lives on the :class:`ServiceMetrics`' own ``CollectorRegistry`` (never the
process-wide default), so two servers in one process, or two tests, never share counts. The
names, types and labels are listed in the README ("Operating expound"); a test checks that
the Grafana dashboard's queries use only names served here.

Gauges of state (calls in flight, the LLM queue, the archive's checkpoint age) are read when
Prometheus scrapes, from functions the server registers; nothing is updated per call for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import expound
from expound.llm.pool import ServerState
from expound.observability.hooks import SHED_CALLS, SHED_DEADLINE, SHED_LLM_QUEUE

# Seconds, from a validation (~0.1 ms) to an LLM draft on CPU (seconds).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
LLM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)


class ServiceMetrics:
    """The metric families of one server, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        on = self.registry
        self.calls = Counter(
            "expound_calls", "RPCs answered, by method and status code.", ["rpc", "code"],
            registry=on,
        )  # fmt: skip
        self.call_seconds = Histogram(
            "expound_call_duration_seconds", "Time to answer an RPC, by method.", ["rpc"],
            buckets=LATENCY_BUCKETS, registry=on,
        )  # fmt: skip
        self.stage_seconds = Histogram(
            "expound_stage_duration_seconds",
            "Time in each stage of answered Explain calls (the names of the answer's timings).",
            ["stage"], buckets=LATENCY_BUCKETS, registry=on,
        )  # fmt: skip
        self.fallbacks = Counter(
            "expound_fallbacks",
            "Explain answers whose explanation fell back to the deterministic one, by reason.",
            ["reason"], registry=on,
        )  # fmt: skip
        self.gate_rejections = Counter(
            "expound_gate_rejections",
            "Drafts the faithfulness gate rejected, by violation kind (once per draft and kind).",
            ["kind"], registry=on,
        )  # fmt: skip
        self.llm_seconds = Histogram(
            "expound_llm_request_duration_seconds",
            "Time of each LLM request, by client (LLM, judge) and outcome (OK or the reason).",
            ["client", "outcome"], buckets=LLM_BUCKETS, registry=on,
        )  # fmt: skip
        self.llm_tokens = Counter(
            "expound_llm_tokens",
            "Tokens the LLM reported using, by client and kind (prompt, completion).",
            ["client", "kind"], registry=on,
        )  # fmt: skip
        self.shed = Counter(
            "expound_shed_calls",
            "Explain calls refused with RESOURCE_EXHAUSTED, by the bound reached.",
            ["reason"], registry=on,
        )  # fmt: skip
        self.archive_appends = Counter(
            "expound_archive_appends",
            "Records the archive was asked to commit, by outcome (committed, failed).",
            ["outcome"], registry=on,
        )  # fmt: skip
        self.archive_records = Gauge(
            "expound_archive_records", "Entries in the archive's log, as last seen.", registry=on
        )
        self.checkpoint_age = Gauge(
            "expound_archive_checkpoint_age_seconds",
            "Seconds since the archive's latest signed checkpoint (NaN before the first).",
            registry=on,
        )
        self.in_flight = Gauge(
            "expound_explain_in_flight", "Explain calls admitted and not yet answered.",
            registry=on,
        )  # fmt: skip
        self.llm_queue = Gauge(
            "expound_llm_queue_depth",
            "Explain calls drafting: on the LLM or waiting for it.",
            registry=on,
        )
        Info("expound_build", "The running service's version.", registry=on).info(
            {"version": expound.__version__}
        )
        # Series a dashboard rates exist from the start, at 0.
        for reason in (SHED_CALLS, SHED_LLM_QUEUE, SHED_DEADLINE):
            self.shed.labels(reason)
        self.committed = self.archive_appends.labels("committed")
        self.failed = self.archive_appends.labels("failed")
        self._stages: dict[str, Histogram] = {}
        self._calls: dict[tuple[str, str], Counter] = {}
        self._call_seconds: dict[str, Histogram] = {}

    def watch(self, gauge: Gauge, read: Callable[[], float]) -> None:
        """Makes ``gauge`` read ``read()`` at each scrape."""
        gauge.set_function(read)

    def observe_call(self, rpc: str, code: str, seconds: float) -> None:
        """Counts one answered RPC and its latency (label children cached: no per-call lookup)."""
        counter = self._calls.get((rpc, code))
        if counter is None:
            counter = self._calls[(rpc, code)] = self.calls.labels(rpc, code)
        counter.inc()
        histogram = self._call_seconds.get(rpc)
        if histogram is None:
            histogram = self._call_seconds[rpc] = self.call_seconds.labels(rpc)
        histogram.observe(seconds)

    def observe_stage(self, stage: str, seconds: float) -> None:
        """Records one stage's time."""
        histogram = self._stages.get(stage)
        if histogram is None:
            histogram = self._stages[stage] = self.stage_seconds.labels(stage)
        histogram.observe(seconds)


class LLMServersCollector(Collector):
    """The LLM server pool as the generator sees it, one series per server, read at each
    scrape: whether it is in rotation, its requests in flight, its running mean latency,
    and its answered and failed requests (counted by this process since it started)."""

    def __init__(self, servers: Callable[[], Sequence[ServerState]]) -> None:
        self._servers = servers

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "expound_llm_server_up",
            "1 while an LLM server of the pool is in rotation, 0 while it is out.",
            labels=["server"],
        )
        in_flight = GaugeMetricFamily(
            "expound_llm_server_in_flight",
            "Requests from this process on an LLM server of the pool.",
            labels=["server"],
        )
        latency = GaugeMetricFamily(
            "expound_llm_server_latency_seconds",
            "Running mean time of an LLM server's answered requests (what the pool balances on).",
            labels=["server"],
        )
        requests = CounterMetricFamily(
            "expound_llm_server_requests",
            "Requests an LLM server of the pool answered (ok) or failed (failed).",
            labels=["server", "outcome"],
        )
        for server in self._servers():
            up.add_metric([server.url], 1.0 if server.in_rotation else 0.0)
            in_flight.add_metric([server.url], server.in_flight)
            latency.add_metric([server.url], server.latency_ms / 1000)
            requests.add_metric([server.url, "ok"], server.answered)
            requests.add_metric([server.url, "failed"], server.failed)
        yield from (up, in_flight, latency, requests)


class MetricsEndpoint:
    """Prometheus' own HTTP server for one registry, on a thread of its own."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.port: int = server.server_port

    def close(self) -> None:
        """Stops serving and frees the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsEndpoint:
    """Serves ``registry`` at ``http://host:port/metrics`` (port 0 picks a free port).

    Raises:
        OSError: If the address cannot be bound (a port in use included).
    """
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsEndpoint(server, thread)


def seconds_since(moment_s: float | None) -> float:
    """Seconds from ``moment_s`` (a UNIX time) to now; NaN for None."""
    return float("nan") if moment_s is None else time.time() - moment_s
