"""The Python clients of expound: ``from expound.clients import ExplainClient``.

Light (the base install): the synchronous and asyncio clients, their security and error
helpers. DataFrames and ``shap`` objects are in :mod:`expound.clients.frames` and plots in
:mod:`expound.plots` (the notebook extra).
"""

from expound.clients.aio import AsyncExplainClient
from expound.clients.channels import CallMetadata, ChannelSecurity
from expound.clients.client import ErrorDetails, ExplainClient, error_details

__all__ = [
    "AsyncExplainClient",
    "CallMetadata",
    "ChannelSecurity",
    "ErrorDetails",
    "ExplainClient",
    "error_details",
]
