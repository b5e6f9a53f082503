"""Explain still answers, in time, when the LLM is down, slow, dropped or talking nonsense."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import tracemalloc
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from expound.clients.client import explain_request
from expound.errors import LLMError
from expound.llm.client import (
    DEADLINE_EXCEEDED,
    LLM_BAD_RESPONSE,
    LLM_UNAVAILABLE,
    CompletionsClient,
    max_response_bytes,
)
from expound.server.app import (
    GENERATOR_HEALTH_NAME,
    generator_server_health_name,
    running_server,
)
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM
from tests.support.llm_stub import Behaviour, llm_stub
from tests.support.scrape import scrape
from tests.support.server_process import free_port


def _settings(settings: Settings, base_url: str) -> Settings:
    return settings.model_copy(
        update={
            "llm_mode": "constrained",
            "llm_base_url": base_url,
            "llm_timeout_s": 2.0,
            "llm_health_interval_s": 0.2,
            # The ranker is not reached when drafting fails; skip loading MiniLM.
            "ranker_embedder": "hashing",
        }
    )


async def _explain(port: int, applicant: dict[str, Any], deadline_s: float) -> tuple[Any, float]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        request = explain_request(GBM, applicant)
        started = time.perf_counter()
        response = await stub.Explain(request, timeout=deadline_s)
        return response, time.perf_counter() - started


async def _archived(port: int, record_id: str) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        record = await stub.GetRecord(pb.GetRecordRequest(record_id=record_id))
    body: dict[str, Any] = json.loads(record.canonical_json)
    return body


async def _assert_fallback(response: Any, reason: str, port: int) -> None:
    assert response.fallback and response.fallback_reason == reason
    assert response.selected.deterministic
    assert response.selected.text.startswith("Your application was declined.")
    record = await _archived(port, response.record_id)
    assert record["response"]["fallback_reason"] == reason
    assert record["response"]["drafting"]["error"]


async def test_vllm_stopped(settings: Settings, denied_applicant: dict[str, Any]) -> None:
    configured = _settings(settings, f"http://127.0.0.1:{free_port()}")
    async with running_server(configured) as running:
        response, elapsed = await _explain(running.port, denied_applicant, deadline_s=5)
        await _assert_fallback(response, LLM_UNAVAILABLE, running.port)
        assert elapsed < 5
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(
                health_pb2.HealthCheckRequest(service=GENERATOR_HEALTH_NAME)
            )
            assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING
            service = await health.Check(health_pb2.HealthCheckRequest(service=""))
            assert service.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_generator_health_is_known_before_its_first_probe_answers(
    settings: Settings,
) -> None:
    # A server that accepts connections but never answers: the first probe takes its full
    # timeout, and until then the documented service name must still answer a status.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        configured = _settings(settings, f"http://127.0.0.1:{silent.getsockname()[1]}")
        async with running_server(configured) as running:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                answer = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=GENERATOR_HEALTH_NAME)
                )
            assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_the_generator_health_shows_each_server_of_the_pool(settings: Settings) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    serving = health_pb2.HealthCheckResponse.SERVING
    async with llm_stub("choose") as alive:
        wanted = {
            GENERATOR_HEALTH_NAME: serving,
            generator_server_health_name(alive): serving,
            generator_server_health_name(dead): health_pb2.HealthCheckResponse.NOT_SERVING,
        }
        seen: dict[str, int] = {}
        async with (
            running_server(_settings(settings, f"{alive},{dead}")) as running,
            grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        ):
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(50):  # the watcher probes every 0.2 s
                for name in wanted:
                    answer = await health.Check(health_pb2.HealthCheckRequest(service=name))
                    seen[name] = int(answer.status)
                if seen == wanted:
                    break
                await asyncio.sleep(0.1)
    assert seen == wanted


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("drop", LLM_UNAVAILABLE),
        ("garbage", LLM_BAD_RESPONSE),
        ("wrong_shape", LLM_BAD_RESPONSE),
        ("http_500", LLM_BAD_RESPONSE),
        ("many_choices", LLM_BAD_RESPONSE),
        ("huge_choices", LLM_BAD_RESPONSE),
    ],
)
async def test_vllm_misbehaving(
    settings: Settings, denied_applicant: dict[str, Any], behaviour: Behaviour, reason: str
) -> None:
    async with llm_stub(behaviour) as url:
        configured = _settings(settings, url)
        async with running_server(configured) as running:
            response, elapsed = await _explain(running.port, denied_applicant, deadline_s=5)
            await _assert_fallback(response, reason, running.port)
            # An oversized answer is refused as it arrives, not parsed and ranked.
            assert elapsed < 2


async def test_slow_vllm_answers_within_the_rpc_deadline(
    settings: Settings, denied_applicant: dict[str, Any]
) -> None:
    async with llm_stub("hang") as url:
        configured = _settings(settings, url).model_copy(update={"llm_timeout_s": 30.0})
        async with running_server(configured) as running:
            response, elapsed = await _explain(running.port, denied_applicant, deadline_s=2.5)
            await _assert_fallback(response, DEADLINE_EXCEEDED, running.port)
            assert elapsed < 2.5


@pytest.mark.parametrize("behaviour", ["many_choices", "huge_choices"])
async def test_an_oversized_answer_is_refused_without_reading_it_all(
    behaviour: Behaviour,
) -> None:
    body = {"model": "m", "prompt": "p", "n": 4, "max_tokens": 320}
    async with llm_stub(behaviour) as url:
        client = CompletionsClient(url)
        tracemalloc.start()
        try:
            with pytest.raises(LLMError) as raised:
                await client.complete(body, timeout_s=5)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await client.aclose()
    assert raised.value.reason == LLM_BAD_RESPONSE
    # Four 7.5 MB choices are 30 MB; what is read stops at the bound for 4 x 320 tokens.
    assert max_response_bytes(body) < 1_000_000
    assert peak < 4 * max_response_bytes(body), f"peak {peak} bytes"


async def test_metrics_show_each_server_of_the_pool(
    settings: Settings, denied_applicant: dict[str, Any]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with llm_stub("choose") as alive:
        configured = _settings(settings, f"{alive},{dead}").model_copy(
            update={"metrics_port": free_port()}
        )
        async with running_server(configured) as running:
            # The watcher probes every 0.2 s: the dead server is soon out of rotation.
            for _ in range(50):
                seen = await scrape(running.metrics_port)
                if seen.value("expound_llm_server_up", server=dead) == 0:
                    break
                await asyncio.sleep(0.1)
            assert seen.value("expound_llm_server_up", server=alive) == 1
            assert seen.value("expound_llm_server_up", server=dead) == 0
            response, _ = await _explain(running.port, denied_applicant, deadline_s=10)
            assert not response.fallback_reason
            seen = await scrape(running.metrics_port)
    # Drafting went to the live server only, and its requests were counted and timed.
    assert seen.value("expound_llm_server_requests_total", server=alive, outcome="ok") > 0
    assert seen.value("expound_llm_server_requests_total", server=dead, outcome="ok") == 0
    assert seen.value("expound_llm_server_latency_seconds", server=alive) > 0
    assert seen.value("expound_llm_server_in_flight", server=alive) == 0
