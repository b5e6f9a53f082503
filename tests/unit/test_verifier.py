"""The faithfulness gate. These texts are for tests only; eval has its own (bench/eval_texts)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.generators.deterministic import APPLICANT_MAX_WORDS, deterministic_explanation
from expound.generators.openers import repeated_openers
from expound.models.registry import ModelRegistry
from expound.rankers.gate import ViolationKind, verify
from tests.conftest import GBM, LOGISTIC
from tests.support.facts_util import facts_for, violation_kinds

# Facts of the denied example on the tree model: loan term 48 months (rank 1, raises risk),
# checking account overdrawn (2), employment below 1 year (3), savings below 100 DM (4).


@pytest.fixture
def denied(registry: ModelRegistry, denied_applicant: dict[str, Any]) -> DecisionFacts:
    return facts_for(registry, GBM, denied_applicant)


@pytest.fixture
def approved(registry: ModelRegistry, approved_applicant: dict[str, Any]) -> DecisionFacts:
    return facts_for(registry, GBM, approved_applicant)


FAITHFUL = (
    "Your application was declined. The main reason was the length of the loan term "
    "(48 months), which raised the estimated risk, followed by your checking account being "
    "overdrawn, which also counted against you."
)


def test_faithful_text_passes(denied: DecisionFacts) -> None:
    verdict = verify(denied, FAITHFUL)
    assert verdict.passed, verdict.violations
    assert verdict.mentioned == ["duration_months", "checking_account"]
    assert verdict.directions == {"duration_months": True, "checking_account": True}
    assert verdict.stated_values == {"duration_months": True, "checking_account": True}
    reasons = denied.reasons
    expected = sum(abs(r.contribution) for r in reasons[:2]) / sum(
        abs(r.contribution) for r in reasons
    )
    assert verdict.coverage == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("The length of the loan term lowered the estimated risk.", ViolationKind.WRONG_DIRECTION),
        ("Your checking account helped your application.", ViolationKind.WRONG_DIRECTION),
        ("Your checking account did not hurt your application.", ViolationKind.WRONG_DIRECTION),
        ("The loan term raised your chances of approval.", ViolationKind.WRONG_DIRECTION),
        ("A loan term of 36 months raised the risk.", ViolationKind.WRONG_VALUE),
        (
            "Your checking account had a balance of 200 DM or more, which counted against you.",
            ViolationKind.WRONG_VALUE,
        ),
        ("Your income also counted against you.", ViolationKind.UNUSED_FEATURE),
        ("Your credit score was too low.", ViolationKind.UNUSED_FEATURE),
        ("Your age counted against you.", ViolationKind.PROTECTED_ATTRIBUTE),
        ("Your gender played a part.", ViolationKind.PROTECTED_ATTRIBUTE),
        ("The main reason was your savings.", ViolationKind.WRONG_ORDER),
        (
            "Your checking account, followed by the loan term, counted against you.",
            ViolationKind.WRONG_ORDER,
        ),
        ("Your application was approved.", ViolationKind.WRONG_DECISION),
        ("Your application was not declined.", ViolationKind.WRONG_DECISION),
        ("There is a 70% chance that you default.", ViolationKind.UNSUPPORTED_NUMBER),
        ("You asked for 9,999 DM.", ViolationKind.UNSUPPORTED_NUMBER),
        ("", ViolationKind.EMPTY),
    ],
)
def test_each_kind_of_unfaithful_claim_is_caught(
    denied: DecisionFacts, text: str, kind: ViolationKind
) -> None:
    assert kind in violation_kinds(denied, text)


@pytest.mark.parametrize(
    "text",
    [
        "Your application was not approved.",
        "Your checking account did not help your application.",
        "The loan term, 48 months, increased the likelihood of default.",
        "A shorter loan term could lower your risk.",
        "The estimated probability of default was 94%, above the threshold of 50%.",
        "Not having savings of 100 DM or more worked against you.",
        "Your application was declined. 1. Loan term 2. Checking account",
        "You asked for 4,308 DM over 48 months.",
    ],
)
def test_true_statements_are_not_flagged(denied: DecisionFacts, text: str) -> None:
    verdict = verify(denied, text)
    assert verdict.passed, verdict.violations


def test_approval_directions(approved: DecisionFacts) -> None:
    assert verify(
        approved,
        "Your application was approved. Having no checking account at this bank helped most, "
        "followed by your credit history.",
    ).passed
    assert ViolationKind.WRONG_DIRECTION in violation_kinds(
        approved, "Your application was approved, although your credit history counted against you."
    )


def test_violation_spans_point_into_the_text(denied: DecisionFacts) -> None:
    text = "Your application was declined. Your income was too low."
    (violation,) = verify(denied, text).violations
    assert text[violation.start : violation.end].lower() == "income"
    assert str(violation).startswith("UNUSED_FEATURE[")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Your savings brought the predicted risk down.", ViolationKind.WRONG_DIRECTION),
        ("The loan term sent your chances of approval up.", ViolationKind.WRONG_DIRECTION),
        ("Your checking account counted in the applicant's favour.", ViolationKind.WRONG_DIRECTION),
        ("Outcome: approve.", ViolationKind.WRONG_DECISION),
        ("The decision was to approve.", ViolationKind.WRONG_DECISION),
        ("Your student loans were a concern.", ViolationKind.UNUSED_FEATURE),
        ("Several late payments counted against you.", ViolationKind.UNUSED_FEATURE),
    ],
)
def test_phrasings_beyond_the_phrase_banks(
    denied: DecisionFacts, text: str, kind: ViolationKind
) -> None:
    assert kind in violation_kinds(denied, text)


@pytest.mark.parametrize(
    "text",
    [
        "Your savings drove the predicted risk up.",
        "The loan term sent your chances of approval down.",
        "Outcome: decline.",
        "The other debtors on the loan were not a factor we can change.",
    ],
)
def test_true_phrasings_beyond_the_phrase_banks(denied: DecisionFacts, text: str) -> None:
    verdict = verify(denied, text)
    assert verdict.passed, verdict.violations


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_deterministic_explanations_pass_for_many_applicants(
    registry: ModelRegistry, model_id: str
) -> None:
    import json

    model = registry.get(model_id)
    rows = json.loads((model.directory / model.manifest.background).read_text())[:40]
    for row in rows:
        for audience in Audience:
            facts = facts_for(registry, model_id, row, audience)
            text = deterministic_explanation(facts)
            verdict = verify(facts, text)
            assert verdict.passed, (text, verdict.violations)
            # The fallback reads as prose too: no opener twice, the audience's length.
            assert repeated_openers(text) == [], text
            if audience is Audience.APPLICANT and len(text.split()) > APPLICANT_MAX_WORDS:
                # Only when what must be said (reasons, counterweight, counterfactual)
                # runs long on its own: the context sentences have given way.
                assert "percentile" not in text and "typical" not in text, text
                assert "of the total push" not in text, text


QUESTIONS = (
    "What can I do to get approved?",
    "Did my checking account matter?",
    "Why did the purpose of the loan count?",
    "Did my credit history matter?",
    "Why was I declined?",
)


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_deterministic_explanations_follow_the_question_and_stay_true(
    registry: ModelRegistry, model_id: str
) -> None:
    import json

    model = registry.get(model_id)
    rows = json.loads((model.directory / model.manifest.background).read_text())[:25]
    for row in rows:
        plain = deterministic_explanation(facts_for(registry, model_id, row))
        for question in QUESTIONS:
            facts = facts_for(registry, model_id, row, Audience.APPLICANT, question)
            text = deterministic_explanation(facts)
            verdict = verify(facts, text)
            assert verdict.passed, (question, text, verdict.violations)
            assert repeated_openers(text) == [], text
            if question.startswith("What can I do") and facts.prediction.adverse:
                # The same text, what can be done put right after the decision.
                assert text != plain and sorted(text) == sorted(plain), (plain, text)


def test_what_can_i_do_puts_the_counterfactual_first(denied: DecisionFacts) -> None:
    # With drafting off or fallen back, the question was ignored: the counterfactual came
    # last, after the four reasons.
    asked = dataclasses.replace(denied, question="What can I do to get approved?")
    text = deterministic_explanation(asked)
    assert text.startswith("Your application was declined. With the length of the loan term")
    assert text.index("would have been") < text.index("The main reasons")
    assert verify(asked, text).passed


def test_a_question_naming_a_factor_gets_that_factors_context(
    registry: ModelRegistry, approved_applicant: dict[str, Any]
) -> None:
    def text(question: str) -> str:
        facts = facts_for(registry, GBM, approved_applicant, Audience.APPLICANT, question)
        written = deterministic_explanation(facts)
        assert verify(facts, written).passed, written
        return written

    # The leading factor (the checking account) has the context unless another is asked.
    assert "The status of the checking account at this bank (no checking account) accounted" in (
        text("")
    )
    history = text("Did my credit history matter?")
    assert "The record of repaying past credit (a critical account or credits at other " in history
    assert "typical record of repaying past credit" in history
    assert "checking account at this bank (no checking account) accounted" not in history
    # A factor that counted the other way: its context follows its own sentence.
    purpose = text("Why did the purpose of the loan count against me?")
    said = purpose.index("In the opposite direction, the purpose of the loan")
    assert said < purpose.index("The purpose of the loan (education) accounted")


def test_a_value_in_parentheses_is_not_a_list_marker(registry: ModelRegistry) -> None:
    import json

    model = registry.get(GBM)
    rows = json.loads((model.directory / model.manifest.background).read_text())
    row = next(r for r in rows if r["installment_rate"] == 1)
    facts = facts_for(registry, GBM, row)
    description = model.manifest.feature("installment_rate").description
    assert verify(facts, f"The {description} (1) was part of the picture.").passed
    assert not verify(facts, f"The {description} (3) was part of the picture.").passed


@pytest.fixture
def obligations_first(registry: ModelRegistry, denied_applicant: dict[str, Any]) -> DecisionFacts:
    # The first principal reason is OBL12 "Other credit obligations", whose text names
    # none of its features (existing credits, other instalment plans) by their own terms.
    applicant = {
        **denied_applicant,
        "existing_credits": 9,
        "duration_months": 38,
        "credit_amount": 9515,
    }
    facts = facts_for(registry, LOGISTIC, applicant)
    assert facts.reasons[0].code == "OBL12"
    return facts


def test_a_reason_named_by_its_text_takes_its_place_in_the_order(
    obligations_first: DecisionFacts,
) -> None:
    # "1. Other credit obligations (9 credits); ... 4. Length of the requested loan term",
    # then "the number of existing credits" later: the reason's text is where its group
    # comes in the order, not the later sentence naming one of its features.
    text = deterministic_explanation(obligations_first)
    assert text.index("Other credit obligations") < text.index("loan term")
    assert verify(obligations_first, text).passed, verify(obligations_first, text).violations


def test_a_reason_text_placed_after_a_lesser_one_is_still_out_of_order(
    obligations_first: DecisionFacts,
) -> None:
    text = (
        "Your application was declined. The main reasons, most important first: "
        "1. Length of the requested loan term (38 months); 2. Other credit obligations "
        "(9 credits)."
    )
    assert ViolationKind.WRONG_ORDER in violation_kinds(obligations_first, text)


@pytest.mark.parametrize(
    "text",
    [
        "The length of the loan term (48 months) raised the risk, and your checking account "
        "(overdrawn) lowered the risk.",
        "The length of the loan term (48 months) raised the risk and your checking account "
        "(overdrawn) lowered it.",
        "Your checking account (overdrawn) lowered the risk, and the length of the loan term "
        "(48 months) raised it.",
    ],
)
def test_each_direction_in_a_clause_is_read_for_its_own_factor(
    denied: DecisionFacts, text: str
) -> None:
    # One clause, two factors, each with its own direction word: the checking account's is
    # "lowered", and it raised the risk. Reading only the clause's first direction for both
    # let this pass.
    wrong = [v for v in verify(denied, text).violations if v.kind is ViolationKind.WRONG_DIRECTION]
    assert [v.message.split(" the risk")[0] for v in wrong] == ["says checking_account lowered"]


def test_two_directions_in_a_clause_both_true_pass(denied: DecisionFacts) -> None:
    verdict = verify(
        denied,
        "The length of the loan term (48 months) raised the risk, and the number of existing "
        "credits at this bank (1) lowered it.",
    )
    assert ViolationKind.WRONG_DIRECTION not in {v.kind for v in verdict.violations}
    assert verdict.directions == {"duration_months": True, "existing_credits": False}


def test_one_direction_for_two_factors_is_read_for_both(denied: DecisionFacts) -> None:
    verdict = verify(
        denied,
        "The length of the loan term (48 months) and your checking account (overdrawn) lowered "
        "the risk.",
    )
    wrong = [v for v in verdict.violations if v.kind is ViolationKind.WRONG_DIRECTION]
    assert len(wrong) == 2
