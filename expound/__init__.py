"""expound: explanations of individual decisions of tabular ML models.

The public surface is small: settings, the error tree and the version. Everything else is
reached through the gRPC API (``expound.v1``) or the client package (``expound.clients``).
"""

from expound.errors import ServiceError
from expound.settings import Settings

__version__ = "0.1.0"

__all__ = ["ServiceError", "Settings", "__version__"]
