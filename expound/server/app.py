"""Building, running and stopping the gRPC server.

Lifetimes are context managers. Start: models, archive, pipeline, server, health
SERVING (while at least one model is served; a model directory that fails to load is
reported unavailable and never stops the server). SIGHUP, like the ReloadModels RPC,
rereads the model directory. Stop, in this order: health NOT_SERVING, drain in-flight
calls for the grace period, backends, then the archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.sdk.trace import TracerProvider

import expound
from expound.errors import StartupError
from expound.llm.pool import ServerState
from expound.models.registry import ModelRegistry
from expound.models.training import GBM_ID
from expound.observability.metrics import MetricsEndpoint, serve_metrics
from expound.observability.telemetry import Telemetry, build_telemetry
from expound.pipeline.assembly import insecure_llm_key, watch_health
from expound.pipeline.explain import Pipeline
from expound.pipeline.records import RecordService
from expound.pipeline.service import cancel_task, load_models, running_service
from expound.server.auth import (
    AccessControl,
    build_access,
    describe_security,
    exposure_problem,
)
from expound.server.errors import ErrorInterceptor
from expound.server.reloading import ModelReloader, log_unavailable
from expound.server.servicer import ExplainServicer
from expound.server.tls import server_credentials
from expound.settings import Settings
from expound.v1 import explain_pb2, explain_pb2_grpc
from expound.web.app import http_face

log = logging.getLogger("expound.server")

SERVICE_NAME = explain_pb2.DESCRIPTOR.services_by_name["ExplainService"].full_name
# Health of the LLM drafting backend; the service itself stays SERVING without it
# (answers fall back to the deterministic explanation).
GENERATOR_HEALTH_NAME = "expound.generator"


def generator_server_health_name(url: str) -> str:
    """The health service name of one LLM server of the pool: in rotation or not."""
    return f"{GENERATOR_HEALTH_NAME}/{url}"


# RPCs gRPC accepts beyond the Explain bound: shed calls, health checks, record reads.
RPC_HEADROOM = 4096
# Calls gRPC holds until the event loop takes them. Its defaults (1,000, then randomly
# dropped up to 3,000) answer a burst with CANCELLED before the pipeline sees it; held,
# each is shed by admission in microseconds with RESOURCE_EXHAUSTED and a retry delay.
RPC_BACKLOG = 65536


@dataclass
class RunningServer:
    """A started server: where it listens and what it serves."""

    server: grpc.aio.Server
    port: int
    registry: ModelRegistry
    pipeline: Pipeline
    records: RecordService
    health: health.aio.HealthServicer
    reloader: ModelReloader
    telemetry: Telemetry
    metrics_port: int = 0  # where /metrics is served (0: not served)
    http_port: int = 0  # where the HTTP/JSON face is served (0: not served)


def create_server(
    address: str,
    servicer: ExplainServicer,
    health_servicer: health.aio.HealthServicer,
    max_message_bytes: int,
    reflect: bool,
    max_concurrent_explains: int = 64,
    credentials: grpc.ServerCredentials | None = None,
    access: AccessControl | None = None,
    telemetry: Telemetry | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Creates (not starts) a server bound to ``address``; port 0 picks a free port.

    With ``credentials`` the port speaks TLS only; with ``access`` every call but health
    checks is authenticated and checked against the policy.

    Raises:
        StartupError: If the address cannot be bound (a port in use is refused: without
            ``grpc.so_reuseport`` off, a second server would share it and split the calls).
    """
    # The trace interceptor (if any) goes first, so the call's span encloses the guard.
    interceptors = [
        *(telemetry.interceptors() if telemetry else ()),
        ErrorInterceptor(access, telemetry.call_done if telemetry else None),
    ]
    server = grpc.aio.server(
        interceptors=interceptors,
        # Far above the Explain bound: the pipeline sheds with RESOURCE_EXHAUSTED and a
        # retry delay; gRPC's own limit would answer without either.
        maximum_concurrent_rpcs=max_concurrent_explains + RPC_HEADROOM,
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", 4 * max_message_bytes),
            ("grpc.server.max_pending_requests", RPC_BACKLOG),
            ("grpc.server.max_pending_requests_hard_limit", RPC_BACKLOG),
            ("grpc.so_reuseport", 0),
        ],
    )
    explain_pb2_grpc.add_ExplainServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if reflect:
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as error:  # grpc's only sign of a failed bind
        raise StartupError(
            f"cannot listen on {address} (EXPOUND_HOST, EXPOUND_PORT or --port): "
            "the port is in use or the address is not this machine's"
        ) from error
    return server, port


def start_metrics(settings: Settings, telemetry: Telemetry) -> MetricsEndpoint | None:
    """Serves the telemetry's metrics where ``settings`` say (None when they are off).

    Raises:
        StartupError: If the metrics address cannot be bound.
    """
    if telemetry.metrics is None:
        return None
    host = settings.metrics_host or settings.host
    try:
        return serve_metrics(telemetry.metrics.registry, host, settings.metrics_port)
    except OSError as error:
        raise StartupError(
            f"cannot serve metrics on {host}:{settings.metrics_port} (EXPOUND_METRICS_HOST, "
            f"EXPOUND_METRICS_PORT; 0 turns metrics off): {error.strerror or error}"
        ) from error


@contextlib.asynccontextmanager
async def running_server(
    settings: Settings, tracer_provider: TracerProvider | None = None
) -> AsyncIterator[RunningServer]:
    """Starts the whole service on ``settings`` and stops it in order on exit.

    Args:
        settings: the service's settings.
        tracer_provider: where spans go instead of the OTLP exporter settings name (tests).

    Raises:
        StartupError: If the model directory, the archive or its signing key, the port, the
            metrics port, a TLS, token, JWT or policy file cannot be used, or serving would
            be unsafe (no authentication on a non-loopback address, an LLM key sent in clear).
    """
    credentials, access = _security(settings)
    registry = load_models(settings)
    log_unavailable(registry)
    telemetry = build_telemetry(settings, tracer_provider)
    async with contextlib.AsyncExitStack() as backends:
        # Unwound in reverse: the service (drafting backend, then archive) closes before
        # buffered spans are exported.
        backends.callback(telemetry.shutdown)
        metrics = start_metrics(settings, telemetry)
        if metrics is not None:
            backends.callback(metrics.close)
        service = await backends.enter_async_context(running_service(settings, registry, telemetry))
        pipeline, archive, language = service.pipeline, service.archive, service.language
        telemetry.watch_admission(
            lambda: pipeline.admission.in_flight, lambda: pipeline.admission.drafting
        )
        records = RecordService(archive)
        health_servicer = health.aio.HealthServicer()
        serving = health_pb2.HealthCheckResponse.SERVING

        async def report_models(any_served: bool) -> None:
            status = serving if any_served else health_pb2.HealthCheckResponse.NOT_SERVING
            await health_servicer.set("", status)
            await health_servicer.set(SERVICE_NAME, status)

        reloader = ModelReloader(registry, report_models)
        servicer = ExplainServicer(
            pipeline, records, registry, reloader, settings.batch_max_in_flight
        )
        server, port = create_server(
            f"{settings.host}:{settings.port}",
            servicer,
            health_servicer,
            settings.max_message_bytes,
            settings.reflection,
            settings.max_concurrent_explains,
            credentials,
            access,
            telemetry,
        )
        faces = await backends.enter_async_context(contextlib.AsyncExitStack())
        http_port = 0
        if settings.http_port:
            try:
                http_port = await faces.enter_async_context(
                    http_face(settings, pipeline, records, registry, reloader, access, telemetry)
                )
            except (OSError, ValueError) as error:
                raise StartupError(
                    f"cannot serve HTTP on {settings.host}:{settings.http_port} "
                    f"(EXPOUND_HTTP_PORT; 0 turns it off): {error}"
                ) from error
        await server.start()
        if telemetry.metrics is not None:
            probe = asyncio.create_task(
                telemetry.watch_archive(archive.head, settings.metrics_archive_interval_s)
            )
            backends.push_async_callback(cancel_task, probe)
        await report_models(bool(registry.all()))
        if language is not None:
            not_serving = health_pb2.HealthCheckResponse.NOT_SERVING

            async def report(healthy: bool, servers: list[ServerState]) -> None:
                await health_servicer.set(
                    GENERATOR_HEALTH_NAME, serving if healthy else not_serving
                )
                for server in servers:
                    await health_servicer.set(
                        generator_server_health_name(server.url),
                        serving if server.in_rotation else not_serving,
                    )

            # Known from the first moment: NOT_SERVING until the first probe answers, never
            # NOT_FOUND for a service name the README documents.
            telemetry.watch_llm_servers(language.generator.servers)
            first = [replace(s, in_rotation=False) for s in language.generator.servers()]
            await report(False, first)
            watcher = asyncio.create_task(
                watch_health(language.generator, report, settings.llm_health_interval_s)
            )
            backends.push_async_callback(cancel_task, watcher)
            if settings.llm_warmup:

                async def warm_up() -> None:
                    await pipeline.warm_up()

                warming = asyncio.create_task(warm_up())
                backends.push_async_callback(cancel_task, warming)
        try:
            yield RunningServer(
                server,
                port,
                registry,
                pipeline,
                records,
                health_servicer,
                reloader,
                telemetry,
                metrics.port if metrics is not None else 0,
                http_port,
            )
        finally:
            await health_servicer.enter_graceful_shutdown()
            await server.stop(settings.grace_seconds)
            await faces.aclose()  # the HTTP face drains too, before the backends close


def _security(
    settings: Settings,
) -> tuple[grpc.ServerCredentials | None, AccessControl | None]:
    """The port's TLS credentials and the access control, checked before anything starts."""
    try:
        credentials = server_credentials(settings)
        access = build_access(settings)
    except ValueError as error:
        raise StartupError(str(error)) from error
    problem = exposure_problem(settings, credentials is not None) or insecure_llm_key(settings)
    if problem:
        raise StartupError(problem)
    return credentials, access


DEMO_APPLICANT = "examples/applicant_denied.json"
"""The example applicant of the demo models, in the repository."""


def try_command(settings: Settings, port: int, model_ids: list[str]) -> str:
    """The command the start-up banner suggests: explaining the example applicant when the
    demo model is served, else showing the first served model's schema (what to send), with
    the credentials the server asks for (a client certificate, else a token)."""
    command = f".venv/bin/expound --target {settings.host}:{port}"
    if settings.tls_cert_file:
        command += " --tls-ca CA_FILE"
    if settings.tls_client_ca_file:
        command += " --cert CERT_FILE --key KEY_FILE"
    elif settings.tokens_file or settings.jwt_public_key_file:
        command += " --token TOKEN"
    if GBM_ID in model_ids:
        return f"{command} explain --model {GBM_ID} --applicant {DEMO_APPLICANT}"
    return f"{command} models show {model_ids[0]}" if model_ids else f"{command} models list"


async def serve(settings: Settings) -> None:
    """Runs the service until SIGINT or SIGTERM; SIGHUP reloads the models."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_server(settings) as running:
        reloads: set[asyncio.Task[None]] = set()

        def reload_models() -> None:
            # The loop keeps only a weak reference to a task: hold it until it is done.
            task = asyncio.create_task(running.reloader.reload_on_signal())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, reload_models)
        model_ids = [m.manifest.model_id for m in running.registry.all()]
        models = ", ".join(model_ids)
        unavailable = len(running.registry.unavailable())
        metrics_host = settings.metrics_host or settings.host
        metrics = (
            f"http://{metrics_host}:{running.metrics_port}/metrics"
            if running.metrics_port
            else "off"
        )
        scheme = "https" if settings.tls_cert_file else "http"
        pages = f"{scheme}://{settings.host}:{running.http_port}/ui" if running.http_port else "off"
        print(
            f"expound {expound.__version__} serving on {settings.host}:{running.port} "
            f"(models: {models or 'none'}; unavailable: {unavailable}; "
            f"archive: {settings.archive_path}; metrics: {metrics}; HTTP API and pages: {pages})\n"
            f"  security: {describe_security(settings)}\n"
            f"  try: {try_command(settings, running.port, model_ids)}",
            flush=True,
        )
        await stop.wait()
        log.info("shutting down")
