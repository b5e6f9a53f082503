"""Ranking stops when the caller goes away (issue 12: no work for a call nobody awaits)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from expound.explainers.facts import DecisionFacts
from expound.llm.draft import Draft
from expound.models.registry import ModelRegistry
from expound.rankers import scoring
from expound.rankers.gate import Verdict
from expound.rankers.scoring import Abandoned, audience_weights, rank_drafts, rank_off_loop
from tests.conftest import GBM
from tests.support.facts_util import facts_for


@pytest.fixture
def facts(registry: ModelRegistry, denied_applicant: dict[str, Any]) -> DecisionFacts:
    return facts_for(registry, GBM, denied_applicant)


DRAFTS = [Draft(text=f"Draft number {i}.", index=i) for i in range(4)]


def test_a_stopped_ranking_verifies_nothing_and_asks_no_second_model(
    facts: DecisionFacts,
) -> None:
    asked: list[list[str]] = []
    stop = threading.Event()
    stop.set()
    with pytest.raises(Abandoned):
        rank_drafts(facts, DRAFTS, lambda t: asked.append(t) or [0.5] * len(t), {}, stop)
    assert asked == []


async def test_cancelling_the_call_stops_the_ranking_thread(
    facts: DecisionFacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    entered, release = threading.Event(), threading.Event()
    real_verify = scoring.verify_candidate

    def slow_verify(facts: DecisionFacts, text: str) -> Verdict:
        verified.append(text)
        entered.set()
        release.wait(10)  # the first draft is still being verified when the caller leaves
        return real_verify(facts, text)

    monkeypatch.setattr(scoring, "verify_candidate", slow_verify)
    outcome: list[BaseException | None] = []
    finished = threading.Event()
    real_rank = scoring.rank_drafts

    def watched(*args: Any) -> Any:
        try:
            result = real_rank(*args)
            outcome.append(None)
            return result
        except BaseException as error:
            outcome.append(error)
            raise
        finally:
            finished.set()

    monkeypatch.setattr(scoring, "rank_drafts", watched)
    asked: list[list[str]] = []
    call = asyncio.create_task(
        rank_off_loop(
            facts,
            DRAFTS,
            lambda t: asked.append(t) or [0.5] * len(t),
            audience_weights(),
        )
    )
    await asyncio.to_thread(entered.wait, 10)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    release.set()
    # The thread finishes the draft it was on, then stops at its next check.
    assert await asyncio.to_thread(finished.wait, 10)
    assert len(outcome) == 1 and isinstance(outcome[0], Abandoned)
    assert verified == [DRAFTS[0].text]
    assert asked == []


async def test_an_awaited_ranking_orders_every_draft(facts: DecisionFacts) -> None:
    ranked = await rank_off_loop(facts, DRAFTS, lambda t: [0.5] * len(t), audience_weights())
    assert sorted(r.draft.index for r in ranked) == [0, 1, 2, 3]
    assert [r.rank for r in ranked] == [1, 2, 3, 4]
