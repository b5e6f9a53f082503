"""Drafting against a pool of LLM servers on real sockets: a refused, hanging or failing
server is taken out of rotation and the drafting goes on, without a fallback, on another
one within the deadline; a healthy probe brings a server back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from expound.errors import LLMError
from expound.explainers.facts import DecisionFacts
from expound.generators.drafting import Drafter, DraftingConfig
from expound.generators.openai_compat import OpenAICompatGenerator
from expound.llm.client import CompletionsClient
from expound.models.registry import ModelRegistry
from tests.conftest import GBM
from tests.support.facts_util import facts_for
from tests.support.llm_stub import Behaviour, llm_stub
from tests.support.server_process import free_port

JUMP = DraftingConfig(
    mode="constrained", decoding="jump", max_tokens=200, temperature=0.8, timeout_s=5.0
)


@pytest.fixture
def denied(registry: ModelRegistry, denied_applicant: dict[str, object]) -> DecisionFacts:
    return facts_for(registry, GBM, denied_applicant, question="Why was I declined?")


@contextlib.asynccontextmanager
async def first_server(behaviour: Behaviour | None) -> AsyncIterator[str]:
    """A server that misbehaves as asked, or (None) a port nobody listens on."""
    if behaviour is None:
        yield f"http://127.0.0.1:{free_port()}"
        return
    async with llm_stub(behaviour) as url:
        yield url


@pytest.mark.parametrize("behaviour", [None, "hang", "http_500", "drop"])
async def test_drafting_moves_off_a_bad_server_within_the_deadline(
    denied: DecisionFacts, behaviour: Behaviour | None
) -> None:
    async with first_server(behaviour) as bad, llm_stub("choose") as good:
        generator = OpenAICompatGenerator(f"{bad},{good}", "stub")
        try:
            started = time.perf_counter()
            drafting = await Drafter(generator, JUMP).draft(denied, 4, 3, time_left_s=8.0)
            elapsed = time.perf_counter() - started
            states = {s.url: s for s in generator.servers()}
        finally:
            await generator.aclose()
    assert not drafting.fallback_reason, drafting.record.error
    assert len(drafting.drafts) == 4 and elapsed < 7.5
    assert not states[bad].in_rotation and states[bad].failed >= 1
    assert states[bad].last_error
    assert states[good].in_rotation and states[good].answered >= drafting.record.llm_requests


async def test_requests_spread_over_healthy_servers_and_a_probe_brings_one_back(
    denied: DecisionFacts,
) -> None:
    async with llm_stub("choose") as one, llm_stub("choose") as two, llm_stub("http_500") as bad:
        client = CompletionsClient(f"{one},{two},{bad}")
        body = {
            "model": "m",
            "prompt": "Decision: decline.",
            "n": 1,
            "max_tokens": 4,
            "structured_outputs": {"choice": ["yes", "no"]},
        }
        try:
            # The 500 takes the third server out; the rest go to the other two, spread.
            failures = 0

            async def call() -> None:
                nonlocal failures
                try:
                    await client.complete(body, 5.0)
                except LLMError:
                    failures += 1

            # Calls at once go to the servers with the fewest in flight.
            for _ in range(3):
                await asyncio.gather(*(call() for _ in range(4)))
            # The one request the 500 answered went on to a healthy server: none failed.
            assert failures == 0
            states = {s.url: s for s in client.servers()}
            assert not states[bad].in_rotation and states[bad].last_error == "HTTP 500"
            assert states[one].answered >= 4 and states[two].answered >= 4
            # Its /health answers 200: the health watcher's probe puts it back.
            assert await client.check_health()
            assert {s.url: s.in_rotation for s in client.servers()}[bad]
        finally:
            await client.aclose()


async def test_every_server_down_is_a_clean_fallback(denied: DecisionFacts) -> None:
    urls = f"http://127.0.0.1:{free_port()},http://127.0.0.1:{free_port()}"
    generator = OpenAICompatGenerator(urls, "stub")
    try:
        drafting = await Drafter(generator, JUMP).draft(denied, 4, 3, time_left_s=5.0)
        assert not await generator.check_health()
    finally:
        await generator.aclose()
    assert drafting.fallback_reason == "LLM_UNAVAILABLE" and drafting.drafts == []
