"""Log lines an operator can parse: JSON (the server's default) or text, one line per event.

Every line carries the call's request id and principal when it is written inside a call
(:class:`CallContextFilter` reads them from :mod:`expound.calling`). The access log
(logger ``expound.access``) is one line per call: RPC, code, latency, record id, peer.

Nothing a caller sends can forge a line: in JSON every value is a JSON string escaped by the
encoder (newlines, quotes, control characters, non-ASCII as ``\\uXXXX``); in text every value
after the message is ``repr``-quoted, and messages quote what a caller sent with ``%r``.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

from expound.calling import current_principal, current_request_id
from expound.times import format_utc

LogFormat = Literal["json", "text"]

ACCESS_LOGGER = "expound.access"
# The fields a line may carry beyond time, level, logger and message, in the order written.
CONTEXT_FIELDS = ("request_id", "principal")
ACCESS_FIELDS = ("rpc", "code", "latency_ms", "record_id", "peer")
EXTRA_FIELDS = ("cause",)
_TEXT_FIELDS = CONTEXT_FIELDS + ACCESS_FIELDS + EXTRA_FIELDS
_LEADING = frozenset({"time", "level", "logger", "message", *CONTEXT_FIELDS})


class CallContextFilter(logging.Filter):
    """Adds the current call's request id and principal to each record written in a call."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id()
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
            record.principal = current_principal()
        return True


class ExpoundJsonFormatter(JsonFormatter):
    """One JSON object per line: time (RFC 3339 UTC), level, logger, message, then fields."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "traceback"},
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Writes ``time``, level, logger, message, the call's ids, then the other fields."""
        log_data["time"] = format_utc(datetime.fromtimestamp(record.created, UTC))
        super().add_fields(log_data, record, message_dict)
        # uvicorn adds its message again with ANSI colour codes, for terminals only.
        log_data.pop("color_message", None)
        # The call's ids right after the message, whatever order the extras came in.
        rest = [key for key in log_data if key not in _LEADING]
        for key in rest:
            log_data[key] = log_data.pop(key)


class ExpoundTextFormatter(logging.Formatter):
    """``time level logger message key=value ...``, every value ``repr``-quoted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The record's line, its known fields appended."""
        line = super().format(record)
        fields = "".join(
            f" {name}={getattr(record, name)!r}" for name in _TEXT_FIELDS if hasattr(record, name)
        )
        if not fields:
            return line
        # A traceback (exc_info) follows the first line; the fields belong on that line.
        first, newline, rest = line.partition("\n")
        return first + fields + newline + rest


def log_handler(log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing ``log_format`` lines to ``stream`` (stderr), call context included."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(ExpoundJsonFormatter() if log_format == "json" else ExpoundTextFormatter())
    handler.addFilter(CallContextFilter())
    return handler


def configure_logging(
    log_format: LogFormat = "json", level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Sends every logger's records, as ``log_format`` lines, to ``stream`` (stderr).

    Like ``logging.basicConfig``, it leaves a root logger that already has handlers as it
    is (an embedding application's, or pytest's capture).
    """
    root = logging.getLogger()
    if root.handlers:
        return
    root.addHandler(log_handler(log_format, stream))
    root.setLevel(level)
    # One line per LLM call and health probe is noise at INFO; failures still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
