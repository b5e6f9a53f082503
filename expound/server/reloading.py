"""Reloading the models of a running server: by RPC or on SIGHUP.

The registry rereads its directory off the event loop, one reload at a time; the health
status of the service follows: SERVING while at least one model is served.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from expound.errors import ServiceError
from expound.models.registry import ModelRegistry, ReloadReport

log = logging.getLogger("expound.models")

HealthReport = Callable[[bool], Awaitable[None]]


def log_unavailable(registry: ModelRegistry) -> None:
    """One warning per model directory the registry could not serve."""
    for model in registry.unavailable():
        log.warning("model %s unavailable: %s", model.model_id, model.reason)


class ModelReloader:
    """Reloads a registry and reports whether any model is served."""

    def __init__(self, registry: ModelRegistry, report_health: HealthReport) -> None:
        self._registry = registry
        self._report_health = report_health
        self._lock = asyncio.Lock()

    async def reload(self) -> ReloadReport:
        """Rereads the model directory; the new set serves the calls that start after.

        Raises:
            ModelIntegrityError: the directory is missing or empty; nothing changed.
        """
        async with self._lock:
            report = await asyncio.to_thread(self._registry.reload)
        log.info(
            "models reloaded: added %s, changed %s, removed %s, unchanged %s",
            report.added,
            report.changed,
            report.removed,
            report.unchanged,
        )
        log_unavailable(self._registry)
        await self._report_health(bool(self._registry.all()))
        return report

    async def reload_on_signal(self) -> None:
        """:meth:`reload` for a signal handler: a refusal is logged, the server goes on."""
        try:
            await self.reload()
        except ServiceError as exc:
            log.error("models not reloaded: %s", exc.message)
