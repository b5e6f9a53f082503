"""Jump-forward drafting: the model decodes only at choice points, texts stay in the
grammar's language, candidates differ, and deadlines and the LLM queue are honoured.

Against the fake generator in process, and over HTTP against the LLM stub's "choose"
server (the real vLLM has its own test in tests/integration)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.generators.drafting import LLM_QUEUE, Drafter
from expound.generators.fake import FakeGenerator, fake_pieces
from expound.generators.grammar import Grammar, Ref, candidate_grammars
from expound.generators.jump import (
    JumpDecoder,
    decisive_prefixes,
    forced,
    options,
    tokens_to_decide,
)
from expound.generators.openai_compat import OpenAICompatGenerator
from expound.llm.client import DEADLINE_EXCEEDED
from expound.models.registry import ModelRegistry
from expound.rankers.gate import verify
from tests.conftest import GBM, LOGISTIC
from tests.support.facts_util import facts_for
from tests.support.grammar_language import language
from tests.support.llm_stub import llm_stub
from tests.support.pipelines import JUMP


@pytest.fixture
def denied(registry: ModelRegistry, denied_applicant: dict[str, Any]) -> DecisionFacts:
    return facts_for(registry, GBM, denied_applicant, question="Why was I declined?")


def test_the_walk_merges_forced_text_and_stops_only_at_real_choices() -> None:
    grammar = Grammar()
    one = grammar.add("one", [("forced ", "too ")])
    pick = grammar.add("pick", [("red",), ("blue",)])
    maybe = grammar.add("maybe", [(" and more",), ()])
    grammar.rules = {"root": [(one, "then ", pick, maybe, ".")], **grammar.rules}
    text, rest = forced(grammar, grammar.rules["root"][0])
    assert text == "forced too then " and rest[0] == Ref("pick")
    assert [(o.text, o.chose) for o in options(grammar, rest)] == [
        ("red", ("pick=0",)),
        ("blue", ("pick=1",)),
    ]
    after = options(grammar, rest)[0].rest
    # The empty alternative gives way to what follows it: the model weighs both at once.
    assert [(o.text, o.rest) for o in options(grammar, after)] == [(" and more.", ()), (".", ())]


def test_choices_are_cut_where_they_part_and_counted_in_tokens() -> None:
    texts = [" The main reason was x.", " The most important was y.", " Above all, z.", ""]
    assert decisive_prefixes(texts) == [" The main", " The most", " Above", ""]
    # " The" is shared, so two steps tell main from most; the end of text is one step.
    spelled = [(1, 2), (1, 3), (4,), ()]
    assert tokens_to_decide(spelled) == 2
    assert tokens_to_decide([(1,), (1, 2)]) == 2  # "a" ends where "a b" goes on


async def test_a_short_forced_span_between_two_choices_is_decoded_in_one_request() -> None:
    grammar = Grammar()
    first = grammar.add("first", [("Next came ",), ("It was followed at length by the ",)])
    second = grammar.add("second", [("red",), ("blue",)])
    grammar.rules = {"root": [(first, second, ".")], **grammar.rules}
    generator = FakeGenerator()
    result = await JumpDecoder(generator, 0.8).decode("p", [grammar] * 8, 3, time.monotonic() + 5)
    pattern = language(grammar)
    assert all(pattern.fullmatch(d.text) for d in result.drafts)
    # "Next came " is two tokens: its continuations are offered with it, so a chain that
    # takes it is done in one request; the long alternative gets a second one.
    asked = generator.choice_requests[0].choices
    assert set(asked) == {"Next came red.", "Next came blue.", "It"}
    for draft in result.drafts:
        assert draft.requests == (1 if draft.text.startswith("Next") else 2), draft
    assert {d.text.startswith("Next") for d in result.drafts} == {True, False}


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
@pytest.mark.parametrize("audience", list(Audience))
async def test_jump_drafts_are_strings_of_the_grammar_and_pass_the_gate(
    registry: ModelRegistry,
    denied_applicant: dict[str, Any],
    approved_applicant: dict[str, Any],
    model_id: str,
    audience: Audience,
) -> None:
    for applicant in (denied_applicant, approved_applicant):
        facts = facts_for(registry, model_id, applicant, audience)
        # One grammar per candidate, each of its own plan style.
        planned = candidate_grammars(facts, 4)
        patterns = [language(p.grammar) for p in planned]
        for seed in (1, 2, 3):
            drafting = await Drafter(FakeGenerator(), JUMP).draft(facts, 4, seed, None)
            assert not drafting.fallback_reason, drafting.record.error
            assert [d.style for d in drafting.drafts] == [p.style for p in planned]
            for draft in drafting.drafts:
                assert patterns[draft.index].fullmatch(draft.text), draft.text
                assert verify(facts, draft.text).passed, draft.text


async def test_forced_spans_are_never_decoded(denied: DecisionFacts) -> None:
    generator = FakeGenerator()
    drafting = await Drafter(generator, JUMP).draft(denied, 4, 7, None)
    factor_phrases = [f.description for f in denied.factors.values()]
    for request in generator.choice_requests:
        # A choice is asked with its distinguishing words only, never the forced text
        # around them (the feature phrases above all), and a few tokens to spend.
        assert request.max_tokens <= 20
        for choice in request.choices:
            assert not any(phrase in choice for phrase in factor_phrases), request.choices
    decoded = drafting.record.completion_tokens
    written = sum(len(fake_pieces(d.text)) for d in drafting.drafts)
    assert 0 < decoded < written / 4, (decoded, written)
    assert drafting.record.llm_requests == len(generator.choice_requests)
    # Tokens are counted word by word, each word once (the chains share counts in flight).
    assert generator.tokenized and len(generator.tokenized) == len(set(generator.tokenized))
    assert all(len(fake_pieces(word)) == 1 for word in generator.tokenized)
    assert drafting.record.sampling["decoding"] == "jump"
    styles = [p.style for p in candidate_grammars(denied, 4)]
    for draft in drafting.drafts:
        assert draft.finish_reason == "stop" and draft.style == styles[draft.index]
        assert draft.chose and all(re.fullmatch(r"\w+=\d+", c) for c in draft.chose)
        assert draft.token_logprobs and all(lp <= 0 for lp in draft.token_logprobs)


async def test_n_chains_differ_and_the_same_seed_repeats_them(denied: DecisionFacts) -> None:
    first = await Drafter(FakeGenerator(), JUMP).draft(denied, 4, 11, None)
    again = await Drafter(FakeGenerator(), JUMP).draft(denied, 4, 11, None)
    other = await Drafter(FakeGenerator(), JUMP).draft(denied, 4, 12, None)
    texts = [d.text for d in first.drafts]
    assert len(set(texts)) >= 3, texts
    assert texts == [d.text for d in again.drafts]
    assert texts != [d.text for d in other.drafts]
    assert [d.index for d in first.drafts] == [0, 1, 2, 3]


async def test_without_a_tokenizer_choices_still_resolve_in_the_language(
    denied: DecisionFacts,
) -> None:
    generator = FakeGenerator(tokenizes=False)
    drafting = await Drafter(generator, JUMP).draft(denied, 2, 5, None)
    patterns = [language(p.grammar) for p in candidate_grammars(denied, 2)]
    assert len(drafting.drafts) == 2
    assert all(patterns[d.index].fullmatch(d.text) for d in drafting.drafts)
    assert all(not r.allowed_token_ids for r in generator.choice_requests)


async def test_a_deadline_cuts_cleanly_to_a_fallback(denied: DecisionFacts) -> None:
    # Each choice takes 0.2 s: the walk cannot finish in the 0.7 s left after the reserve.
    generator = FakeGenerator(delay_s=0.2)
    started = time.perf_counter()
    drafting = await Drafter(generator, JUMP).draft(denied, 4, 7, time_left_s=1.2)
    elapsed = time.perf_counter() - started
    assert drafting.fallback_reason == DEADLINE_EXCEEDED and drafting.drafts == []
    assert drafting.record.error and 0.6 < elapsed < 1.0
    assert generator.choice_requests, "the walk had started"


async def test_the_wait_for_an_llm_slot_is_timed_and_counts_against_the_deadline(
    denied: DecisionFacts,
) -> None:
    generator = FakeGenerator(delay_s=0.05, max_concurrency=1)
    drafter = Drafter(generator, JUMP)
    first, second = await asyncio.gather(
        drafter.draft(denied, 2, 1, None), drafter.draft(denied, 2, 2, None)
    )
    waited, held = sorted([first, second], key=lambda d: d.record.queue_ms)
    assert held.record.queue_ms >= 0.9 * waited.record.latency_ms > 0
    assert held.timings_ms == {LLM_QUEUE: held.record.queue_ms}
    assert not first.fallback_reason and not second.fallback_reason
    # A call whose deadline would pass in the queue falls back, saying so: here the call
    # ahead of it holds the one slot for 8 choices of 0.15 s.
    drafter = Drafter(FakeGenerator(delay_s=0.15, max_concurrency=1), JUMP)
    busy = asyncio.create_task(drafter.draft(denied, 2, 3, None))
    await asyncio.sleep(0.01)
    late = await drafter.draft(denied, 2, 4, time_left_s=1.1)
    await busy
    assert late.fallback_reason == DEADLINE_EXCEEDED
    assert "waiting for an LLM slot" in late.record.error
    assert late.record.queue_ms == pytest.approx(600, abs=100)


async def test_jump_drafting_over_http(denied: DecisionFacts) -> None:
    bodies: list[dict[str, Any]] = []
    async with llm_stub("choose", bodies=bodies) as url:
        generator = OpenAICompatGenerator(url, "stub")
        try:
            drafting = await Drafter(generator, JUMP).draft(denied, 4, 9, time_left_s=10.0)
        finally:
            await generator.aclose()
    assert not drafting.fallback_reason, drafting.record.error
    patterns = [language(p.grammar) for p in candidate_grammars(denied, len(drafting.drafts))]
    assert drafting.drafts
    assert all(
        patterns[d.index].fullmatch(d.text) and verify(denied, d.text).passed
        for d in drafting.drafts
    )
    choices = [b for b in bodies if b["path"] == "/v1/completions" and "seed" in b]
    assert len(choices) == drafting.record.llm_requests
    # The end-of-text token is probed once and let through with the choices' own tokens.
    probes = [b for b in bodies if b.get("return_token_ids")]
    assert len(probes) >= 1 and all(1 in b["allowed_token_ids"] for b in choices)
    assert drafting.record.model == "stub"
