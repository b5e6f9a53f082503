"""The drafting warm-up: once the server is up it drafts and ranks one decision, so that
the first caller does not pay for cold caches; it is not a call (nothing admitted,
observed or archived) and it never stops the service."""

from __future__ import annotations

import asyncio
import logging

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive.memory import open_memory
from expound.errors import LLMError
from expound.generators.drafting import Drafter
from expound.generators.fake import FakeGenerator
from expound.llm.client import LLM_UNAVAILABLE
from expound.models.registry import ModelRegistry
from expound.observability.metrics import ServiceMetrics
from expound.observability.telemetry import Telemetry
from expound.pipeline.explain import Pipeline
from expound.rankers.embedding import EmbeddingRanker, HashingEmbedder
from expound.server.app import running_server
from expound.settings import Settings
from tests.support.archive_backends import fixed_signer
from tests.support.llm_stub import llm_stub
from tests.support.pipelines import JUMP, PIPELINE
from tests.support.scrape import scrape
from tests.support.server_process import free_port


async def test_the_warm_up_drafts_one_decision_and_is_not_a_call(
    registry: ModelRegistry,
) -> None:
    generator = FakeGenerator()
    metrics = ServiceMetrics()
    archive = await open_memory(fixed_signer(Ed25519PrivateKey.generate()))
    pipeline = Pipeline(
        registry,
        archive,
        PIPELINE,
        drafter=Drafter(generator, JUMP),
        ranker=EmbeddingRanker(HashingEmbedder()),
        observer=Telemetry(metrics),
    )
    seconds = await pipeline.warm_up()
    assert seconds is not None and seconds > 0
    # The LLM was asked (choices and token counts are now warm) ...
    assert generator.choice_requests and generator.tokenized
    # ... but nothing was archived, admitted or observed.
    assert (await archive.head()).size == 0
    assert pipeline.admission.in_flight == 0
    value = metrics.registry.get_sample_value
    assert value("expound_stage_duration_seconds_count", {"stage": "draft"}) is None
    await archive.aclose()


async def test_a_failing_llm_makes_the_warm_up_a_logged_no_op(
    registry: ModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    down = FakeGenerator(error=LLMError("connection refused", LLM_UNAVAILABLE))
    archive = await open_memory(fixed_signer(Ed25519PrivateKey.generate()))
    pipeline = Pipeline(
        registry,
        archive,
        PIPELINE,
        drafter=Drafter(down, JUMP),
        ranker=EmbeddingRanker(HashingEmbedder()),
    )
    with caplog.at_level(logging.INFO, logger="expound.pipeline.explain"):
        assert await pipeline.warm_up() is not None
    assert LLM_UNAVAILABLE in caplog.text and "warmed up" in caplog.text
    without = Pipeline(registry, archive, PIPELINE)
    assert await without.warm_up() is None
    await archive.aclose()


async def test_a_server_warms_drafting_up_before_its_first_call(settings: Settings) -> None:
    async with llm_stub("choose") as url:
        configured = settings.model_copy(
            update={
                "llm_mode": "constrained",
                "llm_base_url": url,
                "ranker_embedder": "hashing",
                "metrics_port": free_port(),
                "llm_warmup": True,
            }
        )
        async with running_server(configured) as running:
            for _ in range(100):
                seen = await scrape(running.metrics_port)
                if seen.total("expound_llm_server_requests_total", outcome="ok") > 0:
                    break
                await asyncio.sleep(0.05)
    assert seen.total("expound_llm_server_requests_total", outcome="ok") > 0
    assert seen.total("expound_calls_total") == 0
