"""The Python clients of expound: ``from expound.clients import ExplainClient``.

Light (the base install): the synchronous and asyncio clients, their security and error
helpers. DataFrames and ``shap`` objects are in :mod:`expound.clients.frames` and plots in
:mod:`expound.plots` (the notebook extra).

The names load on first use (PEP 562), not when the package is imported: ``expound serve``
(:mod:`expound.clients.cli`) must set gRPC's log level before the first import of ``grpc``
in the process, and importing this package comes first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expound.clients.aio import AsyncExplainClient
    from expound.clients.channels import CallMetadata, ChannelSecurity
    from expound.clients.client import ErrorDetails, ExplainClient, error_details

_HOMES = {
    "AsyncExplainClient": "expound.clients.aio",
    "CallMetadata": "expound.clients.channels",
    "ChannelSecurity": "expound.clients.channels",
    "ErrorDetails": "expound.clients.client",
    "ExplainClient": "expound.clients.client",
    "error_details": "expound.clients.client",
}

__all__ = [
    "AsyncExplainClient",
    "CallMetadata",
    "ChannelSecurity",
    "ErrorDetails",
    "ExplainClient",
    "error_details",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return list(__all__)
