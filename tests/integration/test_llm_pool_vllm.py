"""A pool of two real vLLM CPU servers behind one service (issue 14): calls spread over
both, and when one is killed with drafting in flight on it, that drafting moves to the
other within the deadline: no call falls back, and the health shows which server is out.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from expound.clients.client import explain_request
from expound.server.app import GENERATOR_HEALTH_NAME, generator_server_health_name, running_server
from expound.settings import Settings
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM
from tests.support.vllm_server import embedded_vllm, stop

pytestmark = pytest.mark.vllm

SUCCESS = "vllm:request_success_total"  # requests a vLLM server finished
# Twice the service's LLM concurrency (4): the second half waits for a slot, so calls are
# still pending when the second server dies, however fast the first half drafts.
CALLS = 8


def vllm_gauge(url: str, name: str) -> float:
    """The sum of one of a vLLM server's Prometheus metrics (all its label sets)."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


async def until(condition: Callable[[], bool], timeout_s: float) -> bool:
    for _ in range(int(timeout_s / 0.1)):
        if await asyncio.to_thread(condition):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_drafting_moves_to_the_other_server_when_one_is_killed_mid_run(
    settings: Settings, vllm_url: str, denied_applicant: dict[str, Any], tmp_path: Path
) -> None:
    with embedded_vllm(tmp_path / "second-vllm.log") as (second, process):
        configured = settings.model_copy(
            update={
                "llm_mode": "constrained",
                "llm_base_url": f"{vllm_url},{second}",
                "llm_timeout_s": 150.0,
                "llm_health_interval_s": 0.5,
                "ranker_embedder": "hashing",
            }
        )
        async with (
            running_server(configured) as running,
            grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        ):
            stub = explain_pb2_grpc.ExplainServiceStub(channel)

            def explain(seed: int) -> Any:
                request = explain_request(GBM, denied_applicant, num_candidates=4, seed=seed)
                return stub.Explain(request, timeout=180)

            before = vllm_gauge(vllm_url, SUCCESS)
            calls = [asyncio.ensure_future(explain(seed)) for seed in range(CALLS)]
            # The calls spread over both servers; once the second has answered some of the
            # drafting, it dies (at a moment it has a request running, if one is seen).
            served = await until(lambda: vllm_gauge(second, SUCCESS) >= 2, timeout_s=120)
            await until(lambda: vllm_gauge(second, "vllm:num_requests_running") > 0, 2)
            pending = sum(not call.done() for call in calls)
            await asyncio.to_thread(stop, process, signal.SIGKILL)
            responses = await asyncio.gather(*calls)
            assert served, "the second server never drafted: the calls were not spread"
            assert pending > 0, "every call was over before the kill"
            assert [r.fallback_reason for r in responses] == [""] * CALLS
            assert all(r.selected.faithful and not r.selected.deterministic for r in responses)
            # The survivor answered the drafting the dead one had in flight.
            assert vllm_gauge(vllm_url, SUCCESS) > before

            # After the kill: the next call drafts on the survivor alone, and the health
            # shows the pool serving with one server out.
            after = await explain(9)
            assert not after.fallback, after.fallback_reason
            health = health_pb2_grpc.HealthStub(channel)
            statuses = {}
            for name in (
                GENERATOR_HEALTH_NAME,
                generator_server_health_name(vllm_url),
                generator_server_health_name(second),
            ):
                answer = await health.Check(health_pb2.HealthCheckRequest(service=name))
                statuses[name] = answer.status
            serving = health_pb2.HealthCheckResponse.SERVING
            assert statuses == {
                GENERATOR_HEALTH_NAME: serving,
                generator_server_health_name(vllm_url): serving,
                generator_server_health_name(second): health_pb2.HealthCheckResponse.NOT_SERVING,
            }
