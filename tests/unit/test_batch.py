"""ExplainBatch over a real loopback socket, and what-if answers that nothing archives.

The batch's per-item errors are compared with what the unary call answers for the same
request, so "the same status" is checked, not assumed; the archive is counted before and
after each call.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from expound.clients.client import explain_request
from expound.observability.logs import ACCESS_LOGGER
from expound.pipeline.batch import in_order
from expound.server.app import RunningServer
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM
from tests.support.wire_status import rich_status

Stub = explain_pb2_grpc.ExplainServiceStub


def violations_of(status: status_pb2.Status) -> list[tuple[str, str]]:
    found = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found += [(v.field, v.description) for v in bad.field_violations]
    return found


async def archived_ids(stub: Stub) -> list[str]:
    page = await stub.ListRecords(pb.ListRecordsRequest(page_size=500))
    return [r.record_id for r in page.records]


async def test_a_batch_answers_every_item_in_order_and_its_errors_do_not_end_it(
    stub: Stub, denied_applicant: dict[str, Any], approved_applicant: dict[str, Any]
) -> None:
    bad_features = {**denied_applicant, "duration_months": "many"}
    requests = [
        ("a", explain_request(GBM, denied_applicant, decision_id="d-a")),
        ("b", explain_request(GBM, bad_features)),
        ("c", explain_request(GBM, approved_applicant, decision_id="d-c")),
        ("d", explain_request("no-such-model", denied_applicant)),
        ("a", explain_request(GBM, approved_applicant)),  # the id again
        ("", explain_request(GBM, approved_applicant)),
        ("e", explain_request(GBM, denied_applicant, decision_id="d-e")),
    ]
    items = [pb.BatchItem(item_id=i, request=r) for i, r in requests]
    call = stub.ExplainBatch(iter(items), metadata=(("x-request-id", "batch-1"),))
    results = [result async for result in call]
    assert dict(await call.trailing_metadata())["x-request-id"] == "batch-1"

    assert [r.item_id for r in results] == [i for i, _ in requests]
    assert [r.WhichOneof("outcome") for r in results] == [
        "response",
        "error",
        "response",
        "error",
        "error",
        "error",
        "response",
    ]
    answered = [r.response for r in results if r.HasField("response")]
    assert [a.decision_id for a in answered] == ["d-a", "d-c", "d-e"]
    assert all(a.archived and a.record_id for a in answered)
    assert sorted(await archived_ids(stub)) == sorted(a.record_id for a in answered)
    # Each failed item carries the status its unary call ends with: code, message, fields.
    for result, (_, request) in zip(results, requests, strict=True):
        if result.HasField("error") and result.item_id in ("b", "d"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Explain(request)
            unary = rich_status(caught.value)
            assert result.error.code == unary.code != 0
            assert result.error.message == unary.message
            assert violations_of(result.error) == violations_of(unary)
    assert violations_of(results[1].error) == [
        ("features[duration_months]", "must be a number (integer)")
    ]
    assert results[4].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert violations_of(results[4].error) == [("item_id", "not unique within the call")]
    assert violations_of(results[5].error) == [("item_id", "required")]
    # Every item's error names the call's request id.
    info = error_details_pb2.RequestInfo()
    assert any(d.Unpack(info) for d in results[3].error.details)
    assert info.request_id == "batch-1"


async def test_a_caller_that_waits_for_each_answer_before_the_next_item_is_answered(
    stub: Stub, denied_applicant: dict[str, Any]
) -> None:
    call = stub.ExplainBatch()
    for n in range(3):
        await call.write(
            pb.BatchItem(item_id=f"i{n}", request=explain_request(GBM, denied_applicant))
        )
        result = await asyncio.wait_for(call.read(), timeout=20)
        assert result.item_id == f"i{n}" and result.response.archived
    await call.done_writing()
    assert await call.read() == grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK


async def test_the_batch_call_is_in_the_access_log(
    stub: Stub, denied_applicant: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    item = pb.BatchItem(item_id="x", request=explain_request(GBM, denied_applicant))
    assert len([r async for r in stub.ExplainBatch(iter([item]))]) == 1
    lines = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [(getattr(r, "rpc", ""), getattr(r, "code", "")) for r in lines] == [
        ("ExplainBatch", "OK")
    ]


async def test_a_what_if_answer_is_not_archived_and_says_so(
    stub: Stub, service: RunningServer, denied_applicant: dict[str, Any]
) -> None:
    archived = await stub.Explain(explain_request(GBM, denied_applicant, idempotency_key="k1"))
    before = await archived_ids(stub)
    head = await service.records.checkpoint(0)
    what_if = await stub.Explain(
        explain_request(GBM, denied_applicant, what_if=True, idempotency_key="k2")
    )
    assert (what_if.archived, what_if.record_id) == (False, "")
    assert archived.archived and archived.record_id
    # The same decision and text as the archived answer: only the archiving differs.
    assert what_if.selected.text == archived.selected.text
    assert what_if.prediction == archived.prediction
    assert await archived_ids(stub) == before
    assert (await service.records.checkpoint(0)).size == head.size
    # Nor does it take an idempotency key: the next real call with it is a new record.
    real = await stub.Explain(explain_request(GBM, denied_applicant, idempotency_key="k2"))
    assert real.archived and real.record_id not in before
    # A what-if with a key already used replays nothing either.
    again = await stub.Explain(
        explain_request(GBM, denied_applicant, what_if=True, idempotency_key="k1")
    )
    assert again.record_id == "" and not again.archived


async def test_what_if_items_in_a_batch_are_not_archived(
    stub: Stub, denied_applicant: dict[str, Any]
) -> None:
    items = [
        pb.BatchItem(item_id=str(n), request=explain_request(GBM, denied_applicant, what_if=True))
        for n in range(4)
    ]
    results = [r async for r in stub.ExplainBatch(iter(items))]
    assert [(r.response.archived, r.response.record_id) for r in results] == [(False, "")] * 4
    assert await archived_ids(stub) == []


# -- the ordering engine, without gRPC ------------------------------------------------


async def _numbers(count: int) -> AsyncIterator[int]:
    for n in range(count):
        yield n


async def test_in_order_keeps_the_order_and_bounds_the_items_in_flight() -> None:
    rng = random.Random(13)
    running = 0
    most = 0

    async def work(n: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(rng.random() / 200)
        running -= 1
        return n * n

    results = [r async for r in in_order(_numbers(200), work, limit=7)]
    assert results == [n * n for n in range(200)]
    assert most == 7


async def test_in_order_cancels_the_items_in_flight_when_its_reader_stops() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def work(n: int) -> int:
        started.append(n)
        try:
            await asyncio.sleep(0 if n == 0 else 30)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        return n

    results = in_order(_numbers(100), work, limit=4)
    assert await anext(results) == 0
    await asyncio.sleep(0.01)
    await results.aclose()
    assert started == [0, 1, 2, 3, 4]  # the window refilled once the first was taken
    assert sorted(cancelled) == [1, 2, 3, 4]


async def test_in_order_ends_with_the_error_reading_the_items_raised() -> None:
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise ConnectionError("the caller's stream broke")

    async def work(n: int) -> int:
        return n

    results: list[int] = []
    with pytest.raises(ConnectionError):
        async for result in in_order(broken(), work, limit=2):
            results.append(result)
    assert results == [1]


async def test_an_undecodable_item_ends_the_stream_with_invalid_argument_and_its_request_id(
    channel: grpc.aio.Channel, denied_applicant: dict[str, Any]
) -> None:
    raw = channel.stream_stream("/expound.v1.ExplainService/ExplainBatch")
    good = pb.BatchItem(item_id="ok", request=explain_request(GBM, denied_applicant))
    call = raw(
        iter([good.SerializeToString(), b"\xff\xff\xff"]), metadata=(("x-request-id", "r-9"),)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(caught.value.trailing_metadata())["x-request-id"] == "r-9"
    assert violations_of(rich_status(caught.value))[0][0] == ""


async def test_a_caller_that_goes_away_stops_the_batch(
    stub: Stub, service: RunningServer, denied_applicant: dict[str, Any]
) -> None:
    request = explain_request(GBM, denied_applicant)
    items = (pb.BatchItem(item_id=str(n), request=request) for n in range(2000))
    call = stub.ExplainBatch(items)
    assert (await call.read()).item_id == "0"
    call.cancel()
    admission = service.pipeline.admission
    for _ in range(200):
        if admission.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert admission.in_flight == 0
    await asyncio.sleep(0.2)  # nothing more is explained once the call is gone
    archived = len(await archived_ids(stub))
    assert 1 <= archived < 100
