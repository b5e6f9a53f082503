"""Builds the drafting stage from settings, and watches the generator's health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from expound.generators.base import Generator
from expound.generators.drafting import Drafter, DraftingConfig
from expound.generators.openai_compat import OpenAICompatGenerator
from expound.rankers.embedding import (
    Embedder,
    HashingEmbedder,
    MiniLMEmbedder,
    SentenceCachedEmbedder,
)
from expound.rankers.judge import RubricJudge
from expound.rankers.ranker import DEFAULT_WEIGHTS, ScoringRanker
from expound.settings import Settings


def build_embedder(settings: Settings) -> Embedder:
    """The ranker's second model: MiniLM, or the hashing fake for unit tests."""
    if settings.ranker_embedder == "hashing":
        return HashingEmbedder()
    return SentenceCachedEmbedder(MiniLMEmbedder())


def build_ranker(settings: Settings) -> ScoringRanker:
    """The ranker with the audience weights from settings (defaults filled in)."""
    weights = {k: {**v, **settings.rank_weights.get(k, {})} for k, v in DEFAULT_WEIGHTS.items()}
    if settings.ranker_relevance == "judge":
        judge = RubricJudge(
            settings.judge_base_url or settings.llm_base_url,
            settings.judge_model or settings.llm_model,
            api_key=settings.llm_api_key,
            timeout_s=settings.llm_timeout_s,
        )
        return ScoringRanker(None, weights, judge=judge)
    return ScoringRanker(build_embedder(settings), weights)


@contextlib.asynccontextmanager
async def drafting_stage(
    settings: Settings,
) -> AsyncIterator[tuple[Drafter | None, Generator | None]]:
    """The drafter and its generator for the lifetime of a server (None when off)."""
    if settings.llm_mode == "off":
        yield None, None
        return
    generator = OpenAICompatGenerator(
        settings.llm_base_url,
        settings.llm_model,
        api_key=settings.llm_api_key,
        max_concurrency=settings.llm_max_concurrency,
    )
    try:
        ranker = await asyncio.to_thread(build_ranker, settings)
        config = DraftingConfig(
            mode=settings.llm_mode,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            timeout_s=settings.llm_timeout_s,
        )
        try:
            yield Drafter(generator, ranker, config), generator
        finally:
            await ranker.aclose()
    finally:
        await generator.aclose()


async def watch_health(
    generator: Generator, report: Callable[[bool], Awaitable[None]], interval_s: float
) -> None:
    """Reports the generator's health every ``interval_s`` until cancelled."""
    while True:
        await report(await generator.check_health())
        await asyncio.sleep(interval_s)
