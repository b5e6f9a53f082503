"""Candidates that differ in plan: the styles, their openers, and the question routing."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.generators.deterministic import counterfactual_sentence
from expound.generators.grammar import build_grammar, candidate_grammars
from expound.generators.openers import assign_openers, opener, repeated_openers, sentences
from expound.llm.draft import Draft
from expound.models.registry import ModelRegistry
from expound.rankers.embedding import EmbeddingRanker, HashingEmbedder
from expound.rankers.gate import verify
from expound.rankers.routing import STYLES, available_styles, preferred_styles, route
from tests.conftest import GBM, LOGISTIC
from tests.support.facts_util import facts_for
from tests.unit.test_reasons import applicant_strategy

QUESTIONS = (
    "",
    "Why was I declined?",
    "What can I do to get approved next time?",
    "List the factors briefly.",
    "Did my loan duration matter?",
    "How much did my checking account count?",
)


def with_question(facts: DecisionFacts, question: str) -> DecisionFacts:
    return dataclasses.replace(facts, question=question)


def plan_named(facts: DecisionFacts, text: str) -> set[str]:
    """The features a text names, a reason's code naming the reason's features."""
    named = set(verify(facts, text).mentioned)
    for reason in facts.reasons:
        if reason.code in text:
            named |= set(reason.features)
    return named


# -- openers ---------------------------------------------------------------------------


def test_opener_is_the_first_word_or_two_after_a_determiner() -> None:
    assert opener("Next came the term.") == "next"
    assert opener("The main reason was the term.") == "the main"
    assert opener("Your application was declined.") == "your application"
    assert opener("duration_months = 48 months raised the risk by 0.3.") == "duration_months"
    assert sentences("Score 0.938 was high. Next came 1,000 DM.") == [
        "Score 0.938 was high.",
        "Next came 1,000 DM.",
    ]


def test_repeated_openers_are_found() -> None:
    text = "It was followed by A. Next came B. It was followed by C."
    assert repeated_openers(text) == ["it"]
    assert repeated_openers("It was followed by A. Next came B.") == []


def test_openers_are_shared_out_disjointly_and_every_slot_keeps_one() -> None:
    slots = [
        ["Next came A.", "After that, A.", "It was followed by A."],
        ["Next came B.", "After that, B."],
        ["Next came C."],
    ]
    given_ = assign_openers(slots)
    assert all(given_)  # every slot can still be written
    flat = [o for openers in given_ for o in openers]
    assert len(flat) == len(set(flat))  # no opener in two slots
    assert given_[2] == {"next"}  # the slot with one choice got it


def test_a_bank_too_small_for_its_slots_is_an_error_unless_the_slot_is_optional() -> None:
    with pytest.raises(ValueError, match="no opener left"):
        assign_openers([["Next came A."], ["Next came B."]])
    assert assign_openers([["Next came A."], ["Next came B."]], optional=[False, True]) == [
        {"next"},
        set(),
    ]


# -- the styles ------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
@pytest.mark.parametrize("audience", list(Audience))
def test_every_style_admits_only_faithful_texts_with_no_repeated_opener(
    registry: ModelRegistry, model_id: str, audience: Audience
) -> None:
    manifest = registry.get(model_id).manifest

    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(applicant_strategy(manifest), st.sampled_from(QUESTIONS), st.integers(0, 2**32))
    def check(applicant: dict[str, Any], question: str, seed: int) -> None:
        facts = facts_for(registry, model_id, applicant, audience, question)
        planned = candidate_grammars(facts, 4)
        assert len(planned) == 4
        rng = random.Random(seed)
        for candidate in planned:
            for _ in range(4):
                text = candidate.grammar.sample(rng)
                verdict = verify(facts, text)
                assert verdict.passed, (candidate.style, text, verdict.violations)
                assert repeated_openers(text) == [], (candidate.style, text)
                if audience is not Audience.APPLICANT:
                    assert facts.plan is not None
                    wanted = {f.feature for f in facts.plan.factors}
                    assert wanted <= plan_named(facts, text), (candidate.style, text)

    check()


def test_the_candidates_of_one_decision_take_different_plans(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, Audience.APPLICANT, "Why?")
    planned = candidate_grammars(facts, 4)
    styles = [p.style for p in planned]
    assert len(set(styles)) == len(available_styles(facts)) >= 3
    texts = {p.style: p.grammar.sample(random.Random(1)) for p in planned}
    # Recourse first states the counterfactual before any reason; the others after.
    recourse = texts["recourse_first"]
    assert "would have been" in sentences(recourse)[1]
    assert all(
        "would have been" not in sentences(t)[1] for s, t in texts.items() if s != "recourse_first"
    )

    # Compact says the reasons in one sentence: fewer sentences naming them than the
    # narrative (courtesy sentences, which either may leave out, aside).
    def naming(text: str) -> list[str]:
        return [s for s in sentences(text) if verify(facts, s).mentioned and "would have" not in s]

    assert len(naming(texts["compact"])) == 1
    assert len(naming(texts["compact"])) < len(naming(texts["contrastive"]))


def test_grammars_of_one_style_beyond_the_styles_available_still_differ(
    registry: ModelRegistry, approved_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, approved_applicant, Audience.ANALYST)
    planned = candidate_grammars(facts, 6)
    assert "recourse_first" not in [p.style for p in planned]  # an approval has no recourse
    ebnf = [p.grammar.to_ebnf() for p in planned]
    assert len(set(ebnf)) == len(ebnf)


def test_build_grammar_is_the_routed_style(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, Audience.APPLICANT, "What can I do?")
    assert preferred_styles(facts)[0] == "recourse_first"
    assert build_grammar(facts).to_ebnf() == candidate_grammars(facts, 1)[0].grammar.to_ebnf()
    text = build_grammar(facts).sample(random.Random(0))
    assert "would have been" in sentences(text)[1]


def test_question_first_opens_with_the_factor_asked_about(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, Audience.ANALYST)
    assert facts.plan is not None
    last = facts.plan.factors[-1]
    description = facts.manifest.feature(last.feature).description
    asked = with_question(facts, f"Did the {description} matter?")
    (first,) = candidate_grammars(asked, 1)
    assert first.style == "question_first"
    for seed in range(10):
        text = first.grammar.sample(random.Random(seed))
        answer = sentences(text)[2]  # after the decision and the base value
        assert verify(asked, answer).mentioned == [last.feature], text
        assert verify(asked, text).passed


# -- routing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "audience", "names_factor", "style"),
    [
        ("Why was I declined?", Audience.APPLICANT, False, "contrastive"),
        ("What could I do to be approved?", Audience.APPLICANT, False, "recourse_first"),
        ("Which factors mattered?", Audience.ANALYST, False, "compact"),
        ("Did my loan term matter?", Audience.APPLICANT, True, "question_first"),
        # Naming no factor of the plan, the same words fall through to the next rule.
        ("Did my age matter?", Audience.APPLICANT, False, "contrastive"),
        ("", Audience.COMPLIANCE, False, "compact"),
        ("", Audience.ANALYST, False, "contrastive"),
    ],
)
def test_routing_table(question: str, audience: Audience, names_factor: bool, style: str) -> None:
    assert route(question, audience, names_factor).style == style


def test_routed_style_falls_back_to_the_audience_default_when_unavailable(
    registry: ModelRegistry, approved_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, approved_applicant, Audience.APPLICANT, "What can I do?")
    assert "recourse_first" not in available_styles(facts)
    assert preferred_styles(facts)[0] == "contrastive"
    assert set(preferred_styles(facts)) <= set(STYLES)


async def test_the_ranker_selects_the_routed_style_when_it_is_faithful(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    ranker = EmbeddingRanker(HashingEmbedder())
    for question, expected in (
        ("What can I do to get approved?", "recourse_first"),
        ("Give me a brief list of the factors.", "compact"),
        ("Why was I declined?", "contrastive"),
    ):
        facts = facts_for(registry, GBM, denied_applicant, Audience.APPLICANT, question)
        planned = candidate_grammars(facts, 4)
        drafts = [
            Draft(text=p.grammar.sample(random.Random(i)), index=i, style=p.style)
            for i, p in enumerate(reversed(planned))
        ]
        ranked = await ranker.rank(facts, drafts)
        assert ranked[0].draft.style == expected, question
        assert ranked[0].scores["style_fit"] == 1.0
        # Unfaithful candidates of the routed style never win on style.
        broken = [
            dataclasses.replace(d, text=d.text.replace("declined", "approved"))
            if d.style == expected
            else d
            for d in drafts
        ]
        ranked = await ranker.rank(facts, broken)
        assert ranked[0].draft.style != expected and ranked[0].verdict.passed


def test_a_counterfactual_score_reads_on_its_side_of_the_threshold(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, Audience.APPLICANT)
    assert facts.plan is not None and facts.plan.recourse is not None
    recorded = facts.plan.recourse.counterfactuals[0]
    threshold = facts.manifest.decision.threshold
    close = recorded.model_copy(update={"score": threshold - 0.0003})
    sentence = counterfactual_sentence(facts, close)
    assert f"{threshold - 0.0003:.4f}, below" in sentence, sentence
    assert f"{recorded.score:.3f}, below" in counterfactual_sentence(facts, recorded)
