"""Builds the drafting and ranking stages from settings, and watches the generator's health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from expound.generators.base import Generator
from expound.generators.drafting import Drafter, DraftingConfig
from expound.generators.openai_compat import OpenAICompatGenerator
from expound.llm.client import sends_key_in_clear, tls_transport
from expound.llm.pool import ServerState, base_urls
from expound.observability.hooks import NO_OBSERVER, Observer
from expound.rankers.base import Ranker
from expound.rankers.embedding import (
    Embedder,
    EmbeddingRanker,
    HashingEmbedder,
    MiniLMEmbedder,
    SentenceCachedEmbedder,
)
from expound.rankers.judge import JudgeRanker, RubricJudge
from expound.settings import Settings


def build_embedder(settings: Settings) -> Embedder:
    """The ranker's second model: MiniLM, or the hashing fake for unit tests."""
    if settings.ranker_embedder == "hashing":
        return HashingEmbedder()
    return SentenceCachedEmbedder(MiniLMEmbedder())


def insecure_llm_key(settings: Settings) -> str | None:
    """Why the LLM API key would leak (sent over plain http to another host), or None."""
    if not settings.llm_api_key or settings.llm_mode == "off":
        return None
    urls = [("EXPOUND_LLM_BASE_URL", url) for url in base_urls(settings.llm_base_url)]
    if settings.ranker_relevance == "judge" and settings.judge_base_url:
        urls += [("EXPOUND_JUDGE_BASE_URL", url) for url in base_urls(settings.judge_base_url)]
    for name, url in urls:
        if sends_key_in_clear(url):
            return (
                f"{name} {url} is plain http to another host: EXPOUND_LLM_API_KEY would be "
                "sent in clear; use https:// (EXPOUND_LLM_CA_FILE for a private CA)"
            )
    return None


def build_ranker(settings: Settings, observer: Observer = NO_OBSERVER) -> Ranker:
    """The ranker settings name, with their audience weights (defaults filled in)."""
    weights = settings.rank_weights
    if settings.ranker_relevance == "judge":
        judge = RubricJudge(
            settings.judge_base_url or settings.llm_base_url,
            settings.judge_model or settings.llm_model,
            api_key=settings.llm_api_key,
            timeout_s=settings.llm_timeout_s,
            transport=tls_transport(settings.llm_ca_file),
            observer=observer,
        )
        return JudgeRanker(judge, weights)
    return EmbeddingRanker(build_embedder(settings), weights)


@dataclass(frozen=True)
class LanguageStages:
    """The stages that use language models: drafting (its generator) and ranking."""

    drafter: Drafter
    generator: Generator
    ranker: Ranker


@contextlib.asynccontextmanager
async def language_stages(
    settings: Settings, observer: Observer = NO_OBSERVER
) -> AsyncIterator[LanguageStages | None]:
    """Drafting and ranking for the lifetime of a server (None when drafting is off)."""
    if settings.llm_mode == "off":
        yield None
        return
    # Checked first (StartupError for a combination drafting cannot run), before anything
    # is opened.
    config = DraftingConfig(
        mode=settings.llm_mode,
        decoding=settings.llm_decoding,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        timeout_s=settings.llm_timeout_s,
        api=settings.llm_api,
    )
    generator = OpenAICompatGenerator(
        settings.llm_base_url,
        settings.llm_model,
        api_key=settings.llm_api_key,
        max_concurrency=settings.llm_max_concurrency,
        transport=tls_transport(settings.llm_ca_file),
        observer=observer,
    )
    try:
        ranker = await asyncio.to_thread(build_ranker, settings, observer)
        try:
            yield LanguageStages(Drafter(generator, config), generator, ranker)
        finally:
            await ranker.aclose()
    finally:
        await generator.aclose()


async def watch_health(
    generator: Generator,
    report: Callable[[bool, list[ServerState]], Awaitable[None]],
    interval_s: float,
) -> None:
    """Reports the generator's health, and each of its servers', every ``interval_s``
    until cancelled."""
    while True:
        healthy = await generator.check_health()
        await report(healthy, generator.servers())
        await asyncio.sleep(interval_s)
