"""Reading an error status as a gRPC client receives it: details, request id, trailer size."""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

from google.rpc import error_details_pb2, status_pb2

# grpc's default limit on the metadata a client accepts (grpc.max_metadata_size).
CLIENT_METADATA_LIMIT = 8 * 1024


def rich_status(error: Any) -> status_pb2.Status:
    """The google.rpc.Status in ``error``'s trailer (sync or aio RpcError)."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError(f"no rich status: {error.code()} {error.details()}")


def trailer_bytes(error: Any) -> int:
    """The trailer's size as sent: binary values in base64, the message percent-encoded."""
    size = len("grpc-message") + len(urllib.parse.quote(error.details() or "", safe=" "))
    for key, value in error.trailing_metadata() or ():
        text = base64.b64encode(value) if isinstance(value, bytes) else value.encode()
        size += len(key) + len(text) + 32  # plus HPACK's per-entry overhead
    return size


def violations(error: Any) -> list[tuple[str, str]]:
    """The BadRequest field violations, as (field, description)."""
    found = []
    for detail in rich_status(error).details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found += [(v.field, v.description) for v in bad.field_violations]
    return found


def request_id(error: Any) -> str:
    """The RequestInfo's request id ("" when there is none)."""
    for detail in rich_status(error).details:
        info = error_details_pb2.RequestInfo()
        if detail.Unpack(info):
            return str(info.request_id)
    return ""


def assert_receivable(error: Any) -> None:
    """``error`` carries its request id (detail and trailer alike) and fits the client limit."""
    assert request_id(error), f"{error.code()} without a request id: {error.details()}"
    assert request_id(error) == dict(error.trailing_metadata() or ())["x-request-id"]
    assert trailer_bytes(error) <= CLIENT_METADATA_LIMIT, trailer_bytes(error)
    assert "<class" not in (error.details() or ""), error.details()
