"""Log lines: one JSON access line per call, every value escaped, the request id joining a
call's lines, its trace and its record."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from expound.clients.client import explain_request
from expound.observability.logs import ExpoundTextFormatter, log_handler
from expound.server.app import RunningServer
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM

FORGED = 'm\n{"time": "2000-01-01T00:00:00Z", "level": "ERROR", "forged": true}\r\n\x1b[2J'


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the service logs at INFO, as the JSON handler `expound serve` installs writes it."""
    stream = io.StringIO()
    handler = log_handler("json", stream)
    root, expound = logging.getLogger(), logging.getLogger("expound")
    level = expound.level
    root.addHandler(handler)
    expound.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        expound.setLevel(level)


def _parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = stream.getvalue().splitlines()
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object


async def test_one_access_line_per_call_with_who_what_and_how_long(
    service: RunningServer, json_lines: io.StringIO, denied_applicant: dict[str, Any]
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        answer = await stub.Explain(
            explain_request(GBM, denied_applicant), metadata=(("x-request-id", "log-ok-1"),)
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Explain(
                explain_request(FORGED, denied_applicant),
                metadata=(("x-request-id", "log-bad-1"),),
            )
        await stub.GetRecord(
            pb.GetRecordRequest(record_id=answer.record_id),
            metadata=(("x-request-id", "log-get-1"),),
        )
    lines = _parsed(json_lines)
    assert not any("forged" in line for line in lines)
    access = {line["request_id"]: line for line in lines if line["logger"] == "expound.access"}
    assert set(access) == {"log-ok-1", "log-bad-1", "log-get-1"}
    ok = access["log-ok-1"]
    assert (ok["rpc"], ok["code"], ok["record_id"]) == ("Explain", "OK", answer.record_id)
    assert ok["principal"] == "anonymous" and ok["level"] == "INFO"
    assert ok["peer"].startswith(("ipv4:127.0.0.1:", "ipv6:[::1]:"))
    assert 0 < ok["latency_ms"] < 10_000
    assert ok["time"].endswith("Z") and ok["time"][10] == "T"
    assert access["log-get-1"]["record_id"] == answer.record_id
    assert access["log-get-1"]["rpc"] == "GetRecord"
    refused = access["log-bad-1"]
    assert (refused["code"], refused["record_id"]) == ("NOT_FOUND", "")
    # The refusal's own line: same request id, the caller's text inside one JSON string.
    (error,) = [
        line
        for line in lines
        if line["logger"] == "expound.server" and line.get("request_id") == "log-bad-1"
    ]
    assert error["code"] == "NOT_FOUND" and "forged" in error["message"]


async def test_the_record_keeps_the_calls_request_id(
    stub: Any, denied_applicant: dict[str, Any]
) -> None:
    chosen = await stub.Explain(
        explain_request(GBM, denied_applicant), metadata=(("x-request-id", "rec-req-1"),)
    )
    call = stub.Explain(explain_request(GBM, denied_applicant))
    generated = await call
    trailer = dict(await call.trailing_metadata())
    for answer, request_id in ((chosen, "rec-req-1"), (generated, trailer["x-request-id"])):
        record = await stub.GetRecord(pb.GetRecordRequest(record_id=answer.record_id))
        body = json.loads(record.canonical_json)
        assert body["schema"] == "expound.record/v4"
        assert body["request_id"] == request_id


def test_a_text_line_quotes_every_value() -> None:
    record = logging.makeLogRecord(
        {
            "name": "expound.access",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "%s %s",
            "args": ("Explain", "OK"),
            "request_id": "r-1",
            "peer": "ipv4:1.2.3.4:5\nforged line",
            "record_id": "",
        }
    )
    line = ExpoundTextFormatter().format(record)
    assert "\n" not in line
    assert line.endswith(
        "INFO expound.access Explain OK request_id='r-1' record_id='' "
        "peer='ipv4:1.2.3.4:5\\nforged line'"
    )


def test_uvicorns_coloured_copy_of_a_message_is_not_written(json_lines: io.StringIO) -> None:
    # uvicorn logs its lines with extra={"color_message": ...}, the message with ANSI
    # colour codes, which came out as a field of every JSON line it wrote.
    logging.getLogger("uvicorn.error").warning(
        "Started server process [%d]",
        42,
        extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"},
    )
    (line,) = _parsed(json_lines)
    assert line["message"] == "Started server process [42]"
    assert "color_message" not in line
