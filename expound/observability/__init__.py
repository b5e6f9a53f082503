"""Observability: Prometheus metrics, OpenTelemetry traces and structured logs.

The pipeline and the LLM client see only :class:`~expound.observability.hooks.Observer`
(no-op by default); the server builds one :class:`~expound.observability.telemetry.Telemetry`
from the settings and passes it down.
"""
