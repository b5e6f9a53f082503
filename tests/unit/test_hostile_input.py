"""Plain bad input over a real socket: a documented code, a request id, a status that fits.

Regression tests for issue 12 items 1 to 3: out-of-range timestamps and page tokens were
INTERNAL, undecodable request bytes were UNKNOWN with a Python class name and no request id,
and long violation lists or long quoted ids made a trailer the client refused.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from expound.clients.client import explain_request
from expound.v1 import explain_pb2 as pb
from expound.wire import feature_to_pb
from tests.conftest import GBM
from tests.support.wire_status import assert_receivable, request_id, violations


def assert_documented(
    error: grpc.aio.AioRpcError, code: grpc.StatusCode, field: str | None
) -> list[tuple[str, str]]:
    """``error`` has ``code``, a request id, fits the client's limit, names ``field``."""
    assert error.code() == code, f"{error.code()}: {error.details()}"
    assert_receivable(error)
    found = violations(error)
    if field is not None:
        assert field in {f for f, _ in found}, found
    return found


def stamp(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


# One server per test: each test walks its family over one socket.
OUT_OF_RANGE_TIMES = [
    ("since", stamp(10**12)),
    ("since", stamp(-(10**12))),
    ("until", stamp(1, nanos=-1)),
    ("until", stamp(1, nanos=1_000_000_000)),
    ("since", stamp(253_402_300_800)),  # year 10000
]
FOREIGN_TOKENS = ["²", "١٢٣", "9223372036854775808", "99999999999999999999", "-1", "1 ", "9" * 5000]


async def test_out_of_range_timestamps_are_invalid_argument(stub: Any) -> None:
    for field, value in OUT_OF_RANGE_TIMES:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListRecords(pb.ListRecordsRequest(**{field: value}))
        assert_documented(caught.value, grpc.StatusCode.INVALID_ARGUMENT, field)


async def test_page_tokens_not_issued_by_the_service_are_invalid_argument(stub: Any) -> None:
    for token in FOREIGN_TOKENS:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListRecords(pb.ListRecordsRequest(page_token=token))
        assert_documented(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "page_token")


async def test_the_largest_token_and_the_earliest_since_are_served(
    stub: Any, denied_applicant: dict[str, Any]
) -> None:
    answer = await stub.Explain(explain_request(GBM, denied_applicant))
    page = await stub.ListRecords(pb.ListRecordsRequest(page_token=str(2**63 - 1)))
    assert [r.record_id for r in page.records] == [answer.record_id]
    year_999 = stamp(-30_641_760_000)  # 0999-01-01T00:00:00Z
    page = await stub.ListRecords(pb.ListRecordsRequest(since=year_999))
    assert [r.record_id for r in page.records] == [answer.record_id]
    year_1 = stamp(-62_135_596_800)
    page = await stub.ListRecords(pb.ListRecordsRequest(until=year_1))
    assert list(page.records) == []


METHODS = [
    "Explain",
    "GetRecord",
    "ListRecords",
    "GetCheckpoint",
    "GetConsistencyProof",
    "GetModel",
]
GARBAGE = [b"\x07", b"\xff\xff\xff", b"\x0a\x05ab"]


async def test_undecodable_request_bytes_are_invalid_argument_with_a_request_id(
    channel: grpc.aio.Channel,
) -> None:
    for method in METHODS:
        call = channel.unary_unary(f"/expound.v1.ExplainService/{method}")
        for garbage in GARBAGE:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(garbage, metadata=(("x-request-id", "raw-1"),))
            assert_documented(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "")
            assert request_id(caught.value) == "raw-1"


async def test_ten_thousand_unknown_features_get_a_receivable_answer(
    stub: Any, denied_applicant: dict[str, Any]
) -> None:
    message = explain_request(GBM, denied_applicant)
    for i in range(10_000):
        message.features[f"unknown_{i}"].CopyFrom(feature_to_pb(1.0))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(message)
    assert_documented(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "features")


async def test_nine_hundred_unset_unknown_features_are_listed_and_summed_up(
    stub: Any, denied_applicant: dict[str, Any]
) -> None:
    message = explain_request(GBM, denied_applicant)
    for i in range(900):
        message.features["😀" * 40 + str(i)].CopyFrom(pb.FeatureValue())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(message)
    found = assert_documented(caught.value, grpc.StatusCode.INVALID_ARGUMENT, None)
    assert 2 <= len(found) <= 51
    listed, (_, summary) = found[:-1], found[-1]
    assert summary == f"and {900 - len(listed)} more"


async def test_an_emoji_record_id_gets_not_found_that_fits(stub: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetRecord(pb.GetRecordRequest(record_id="😀" * 1200))
    assert_documented(caught.value, grpc.StatusCode.NOT_FOUND, None)


async def test_an_emoji_model_id_gets_a_status_that_fits(
    stub: Any, denied_applicant: dict[str, Any]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(explain_request("😀" * 1200, denied_applicant))
    assert caught.value.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
    assert_documented(caught.value, caught.value.code(), None)
