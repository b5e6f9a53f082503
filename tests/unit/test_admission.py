"""Admission control over real gRPC on loopback: overload is shed with RESOURCE_EXHAUSTED
and a retry delay, never CANCELLED; every accepted call is answered inside its deadline,
and a record is committed for every answer and no other call (issue 12)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from expound.archive.store import RecordFilter
from expound.clients.client import explain_request
from expound.errors import Overloaded
from expound.llm.client import DEADLINE_EXCEEDED
from expound.pipeline.admission import Admission
from expound.server import convert
from expound.server.app import RunningServer, running_server
from expound.settings import Settings
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM
from tests.support.callers import TEST_CALLER
from tests.support.llm_stub import llm_stub


async def archived(running: RunningServer) -> int:
    """How many records the server's archive holds."""
    count, token = 0, ""
    while True:
        page = await running.records.list_records(RecordFilter(), 500, token, TEST_CALLER)
        count += len(page.records)
        token = page.next_page_token
        if not token:
            return count


def retry_delay_s(error: grpc.aio.AioRpcError) -> float:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no rich status on a shed call"
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return float(info.retry_delay.ToTimedelta().total_seconds())
    raise AssertionError("no RetryInfo on a shed call")


async def burst(
    port: int, applicant: dict[str, Any], calls: int, deadline_s: float
) -> tuple[Counter[str], list[Any], float]:
    """Sends ``calls`` Explain calls at once on one channel.

    Returns:
        the count by code, the OK answers, and the slowest OK answer's latency.
    """
    codes: Counter[str] = Counter()
    answers: list[Any] = []
    slowest = 0.0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        request = explain_request(GBM, applicant)

        async def one() -> None:
            nonlocal slowest
            started = time.perf_counter()
            try:
                answers.append(await stub.Explain(request, timeout=deadline_s))
                slowest = max(slowest, time.perf_counter() - started)
                codes["OK"] += 1
            except grpc.aio.AioRpcError as error:
                codes[error.code().name] += 1
                if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    assert retry_delay_s(error) == 1.0
                    assert "server busy" in (error.details() or "")

        await asyncio.gather(*(one() for _ in range(calls)))
    return codes, answers, slowest


def test_admission_sheds_beyond_each_bound() -> None:
    admission = Admission(max_calls=2, max_llm_calls=1, retry_after_s=0.5)
    with admission.admitted(drafts=True) as ticket:
        with (
            pytest.raises(Overloaded, match="LLM queue is full") as shed,
            admission.admitted(drafts=True),
        ):
            pass
        assert shed.value.retry_after_s == 0.5
        with (
            admission.admitted(drafts=False),
            pytest.raises(Overloaded, match="2 Explain calls in flight"),
            admission.admitted(drafts=False),
        ):
            pass
        ticket.drafting_done()
        with admission.admitted(drafts=True):
            assert admission.drafting == 1
    assert (admission.in_flight, admission.drafting) == (0, 0)


async def test_a_burst_is_shed_with_resource_exhausted_never_cancelled(
    settings: Settings, denied_applicant: dict[str, Any]
) -> None:
    configured = settings.model_copy(update={"max_concurrent_explains": 16})
    # 2,000 at once: beyond the 1,000 calls gRPC holds by default before it drops some with
    # CANCELLED.
    async with running_server(configured) as running:
        codes, answers, _ = await burst(running.port, denied_applicant, 2000, deadline_s=30)
        assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes
        assert codes["OK"] >= 16 and codes["RESOURCE_EXHAUSTED"] > 0, codes
        assert await archived(running) == codes["OK"] == len({a.record_id for a in answers})


async def test_a_hanging_llm_answers_every_accepted_call_inside_its_deadline(
    settings: Settings, denied_applicant: dict[str, Any]
) -> None:
    async with llm_stub("hang") as url:
        configured = settings.model_copy(
            update={
                "llm_mode": "constrained",
                "llm_base_url": url,
                "llm_timeout_s": 30.0,
                "ranker_embedder": "hashing",
                "max_concurrent_explains": 32,
                "llm_max_concurrency": 4,
                "llm_max_queue": 20,
            }
        )
        async with running_server(configured) as running:
            codes, answers, slowest = await burst(
                running.port, denied_applicant, 64, deadline_s=2.5
            )
            assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes
            assert codes["OK"] == 24, codes  # the LLM's 4 slots and its queue of 20
            assert slowest < 2.5
            assert all(a.fallback_reason == DEADLINE_EXCEEDED for a in answers)
            assert await archived(running) == codes["OK"]


async def test_a_caller_that_goes_away_stops_its_work_and_leaves_no_record(
    settings: Settings, denied_applicant: dict[str, Any]
) -> None:
    hung_up = asyncio.Event()
    async with llm_stub("hang", hung_up) as url:
        configured = settings.model_copy(
            update={
                "llm_mode": "constrained",
                "llm_base_url": url,
                "llm_timeout_s": 30.0,
                "ranker_embedder": "hashing",
            }
        )
        async with running_server(configured) as running:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = explain_pb2_grpc.ExplainServiceStub(channel)
                call = stub.Explain(explain_request(GBM, denied_applicant), timeout=30)
                await asyncio.sleep(1.0)  # decided and waiting on the LLM
                call.cancel()
                # The LLM request is dropped with the call, not left to its 30 s timeout.
                await asyncio.wait_for(hung_up.wait(), 5)
            await asyncio.sleep(0.2)
            assert running.pipeline.admission.in_flight == 0
            assert await archived(running) == 0


async def test_a_call_without_time_left_to_commit_is_shed_and_leaves_no_record(
    service: RunningServer, denied_applicant: dict[str, Any]
) -> None:
    request = convert.explain_request_from_pb(explain_request(GBM, denied_applicant))
    with pytest.raises(Overloaded, match="no time left"):
        await service.pipeline.explain(request, time_left_s=0.01)
    assert await archived(service) == 0
    await service.pipeline.explain(request, time_left_s=5.0)
    assert await archived(service) == 1
