"""Ranking prepared while the LLM drafts: each draft is handed on as soon as it is finished,
the ranker embeds it then, and the rank stage is left with nothing new to embed.

The ranking itself must not change: the same drafts get the same scores with or without
the preparation, and a preparation that fails costs nothing but its time.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive.memory import open_memory
from expound.domain import Audience, ExplainRequest
from expound.explainers.facts import DecisionFacts
from expound.generators.drafting import Drafter
from expound.generators.fake import FakeGenerator
from expound.generators.grammar import candidate_grammars
from expound.generators.jump import JumpDecoder
from expound.llm.draft import Draft
from expound.models.registry import ModelRegistry
from expound.pipeline.explain import Pipeline
from expound.rankers.base import RankedDraft
from expound.rankers.embedding import EmbeddingRanker, HashingEmbedder, SentenceCachedEmbedder
from tests.conftest import GBM
from tests.support.archive_backends import fixed_signer
from tests.support.embedders import CountingEmbedder
from tests.support.facts_util import facts_for
from tests.support.pipelines import JUMP, PIPELINE


class WatchedRanker(EmbeddingRanker):
    """The embedding ranker, noting what it was asked to prepare and what ranking embedded."""

    def __init__(self, inner: CountingEmbedder, fail_prepare: bool = False) -> None:
        super().__init__(SentenceCachedEmbedder(inner))
        self.inner = inner
        self.fail_prepare = fail_prepare
        self.prepared: list[list[str]] = []
        self.embedded_while_ranking: list[str] = []

    async def prepare(self, facts: DecisionFacts, texts: list[str]) -> None:
        self.prepared.append(texts)
        if self.fail_prepare:
            raise RuntimeError("the second model is not loaded yet")
        await super().prepare(facts, texts)

    async def rank(self, facts: DecisionFacts, drafts: list[Draft]) -> list[RankedDraft]:
        before = len(self.inner.seen)
        ranked = await super().rank(facts, drafts)
        self.embedded_while_ranking = self.inner.seen[before:]
        return ranked


@pytest.fixture
def denied(registry: ModelRegistry, denied_applicant: dict[str, Any]) -> DecisionFacts:
    return facts_for(registry, GBM, denied_applicant, question="Why was I declined?")


async def test_each_chain_hands_on_its_draft_as_it_ends_while_others_go_on(
    denied: DecisionFacts,
) -> None:
    generator = FakeGenerator(delay_s=0.002)
    handed: list[tuple[str, int]] = []
    grammars = [p.grammar for p in candidate_grammars(denied, 4)]
    result = await JumpDecoder(generator, 0.8).decode(
        "prompt",
        grammars,
        seed=3,
        deadline=10**9,
        on_draft=lambda text: handed.append((text, len(generator.choice_requests))),
    )
    assert sorted(text for text, _ in handed) == sorted(d.text for d in result.drafts)
    # The first draft came while other chains still had choices to ask for.
    assert handed[0][1] < len(generator.choice_requests), handed


async def test_one_request_drafting_hands_on_each_answer(denied: DecisionFacts) -> None:
    texts = ["Your application was declined. One.", "Your application was declined. Two."]
    config = replace(JUMP, decoding="grammar")
    handed: list[str] = []
    drafting = await Drafter(FakeGenerator(texts), config).draft(
        denied, 2, 5, None, on_draft=handed.append
    )
    assert sorted(handed) == sorted(d.text for d in drafting.drafts) == sorted(texts)


async def test_preparation_leaves_ranking_nothing_new_to_embed(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    ranker = WatchedRanker(CountingEmbedder())
    archive = await open_memory(fixed_signer(Ed25519PrivateKey.generate()))
    pipeline = Pipeline(
        registry, archive, PIPELINE, drafter=Drafter(FakeGenerator(), JUMP), ranker=ranker
    )
    answer = await pipeline.explain(
        ExplainRequest(model_id=GBM, features=denied_applicant, question="Why?")
    )
    await archive.aclose()
    drafted = [c.text for c in answer.candidates if not c.deterministic]
    assert len(drafted) == 4 and not answer.fallback
    # First the decision's own texts (question and reasons), then each draft alone.
    assert ranker.prepared[0] == []
    assert sorted(t.strip() for (t,) in ranker.prepared[1:]) == sorted(drafted)
    assert ranker.inner.seen, "preparation embedded the drafts' sentences"
    assert ranker.embedded_while_ranking == []


async def test_ranking_is_the_same_with_or_without_preparation(denied: DecisionFacts) -> None:
    drafting = await Drafter(FakeGenerator(), JUMP).draft(denied, 4, 9, None)
    plain = await EmbeddingRanker(SentenceCachedEmbedder(HashingEmbedder())).rank(
        denied, drafting.drafts
    )
    prepared_ranker = EmbeddingRanker(SentenceCachedEmbedder(HashingEmbedder()))
    await prepared_ranker.prepare(denied, [])
    for draft in drafting.drafts:
        await prepared_ranker.prepare(denied, [draft.text])
    prepared = await prepared_ranker.rank(denied, drafting.drafts)

    def scores(ranked: list[RankedDraft]) -> list[tuple[int, int, dict[str, float]]]:
        return [
            (r.draft.index, r.rank, {k: v for k, v in r.scores.items() if k != "ranking_ms"})
            for r in ranked
        ]

    # The hashing embedder gives a sentence the same vector alone or in a batch.
    assert scores(prepared) == scores(plain)


async def test_a_failed_preparation_is_logged_and_the_call_answers(
    registry: ModelRegistry,
    denied_applicant: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ranker = WatchedRanker(CountingEmbedder(), fail_prepare=True)
    archive = await open_memory(fixed_signer(Ed25519PrivateKey.generate()))
    pipeline = Pipeline(
        registry, archive, PIPELINE, drafter=Drafter(FakeGenerator(), JUMP), ranker=ranker
    )
    with caplog.at_level(logging.WARNING, logger="expound.pipeline.explain"):
        answer = await pipeline.explain(
            ExplainRequest(model_id=GBM, features=denied_applicant, audience=Audience.ANALYST)
        )
    await archive.aclose()
    assert not answer.fallback and answer.selected is not None
    assert not answer.selected.deterministic
    # Ranking did the embedding itself.
    assert ranker.embedded_while_ranking
    assert "ranking preparation failed" in caplog.text
