"""The gate on sentence shapes an instruct model writes (free mode): each false claim fails,
and a true one of the same shape passes (or, where noted, fails closed as UNVERIFIABLE).

Facts of the denied example on the tree model: loan term 48 months (rank 1, raises risk),
checking account overdrawn (2), employment below 1 year (3), savings below 100 DM (4);
other instalment plans and existing credits lowered the risk. Approved example: no
checking account (rank 1, lowered the risk), credit history (2).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from expound.explainers.facts import DecisionFacts
from expound.models.registry import ModelRegistry
from expound.rankers.gate import ViolationKind, verify
from tests.conftest import GBM
from tests.support.facts_util import facts_for, violation_kinds

DECLINED = "Your application was declined. "


@pytest.fixture
def denied(registry: ModelRegistry, denied_applicant: dict[str, Any]) -> DecisionFacts:
    return facts_for(registry, GBM, denied_applicant)


@pytest.fixture
def approved(registry: ModelRegistry, approved_applicant: dict[str, Any]) -> DecisionFacts:
    return facts_for(registry, GBM, approved_applicant)


# (false text, the violation it must raise, a true text of the same shape).
SHAPES = [
    # A parenthetical "however" sits between a factor and its verb: it joins, not splits.
    pytest.param(
        "The loan term raised the risk: your checking account, however, lowered it.",
        ViolationKind.WRONG_DIRECTION,
        "The loan term raised the risk: the number of existing credits at this bank, however, "
        "lowered it.",
        id="parenthetical-however",
    ),
    pytest.param(
        "The length of the loan term (48 months) raised the risk. Your checking account "
        "(overdrawn), however, lowered it.",
        ViolationKind.WRONG_DIRECTION,
        "The length of the loan term (48 months) raised the risk. The number of existing "
        "credits at this bank (1), however, lowered it.",
        id="parenthetical-however-own-sentence",
    ),
    # Passive voice with the approval as subject: the object of "raised" is before it.
    pytest.param(
        "Your chances were raised by the loan term.",
        ViolationKind.WRONG_DIRECTION,
        "Your chances were lowered by the loan term.",
        id="passive-chances",
    ),
    pytest.param(
        "Your chances of approval were increased by your checking account.",
        ViolationKind.WRONG_DIRECTION,
        "Your chances of approval were reduced by your checking account.",
        id="passive-chances-of-approval",
    ),
    # "add to" after a negation was no direction at all.
    pytest.param(
        "The loan term didn't add to the risk.",
        ViolationKind.WRONG_DIRECTION,
        "The loan term didn't add to your chances.",
        id="negated-add-to",
    ),
    # Direction words the lists lacked.
    pytest.param(
        "Your checking account lessened the risk.",
        ViolationKind.WRONG_DIRECTION,
        "Your checking account being overdrawn lessened your chances.",
        id="lessened",
    ),
    pytest.param(
        "The loan term was beneficial.",
        ViolationKind.WRONG_DIRECTION,
        "Having no other instalment plans was beneficial.",
        id="beneficial",
    ),
    pytest.param(
        "The loan term had a favourable effect.",
        ViolationKind.WRONG_DIRECTION,
        "The number of existing credits had a favourable effect.",
        id="favourable-effect",
    ),
    pytest.param(
        "The loan term pushed the decision toward approval.",
        ViolationKind.WRONG_DIRECTION,
        "The number of existing credits pushed the decision toward approval.",
        id="toward-approval",
    ),
    # Comparatives state an order of importance.
    pytest.param(
        "Your savings mattered more than the loan term.",
        ViolationKind.WRONG_ORDER,
        "The loan term mattered more than your savings.",
        id="mattered-more-than",
    ),
    pytest.param(
        "The loan term mattered less than your savings.",
        ViolationKind.WRONG_ORDER,
        "Your savings mattered less than the loan term.",
        id="mattered-less-than",
    ),
    pytest.param(
        "Your employment was more important than the loan term.",
        ViolationKind.WRONG_ORDER,
        "The loan term was more important than your employment.",
        id="more-important-than",
    ),
    pytest.param(
        "The checking account outweighed the loan term.",
        ViolationKind.WRONG_ORDER,
        "The loan term outweighed your checking account.",
        id="outweighed",
    ),
    pytest.param(
        "The loan term came after your savings in importance.",
        ViolationKind.WRONG_ORDER,
        "Your checking account came after the loan term.",
        id="came-after",
    ),
    # The main factor named before its cue.
    pytest.param(
        "Your checking account was the most important factor.",
        ViolationKind.WRONG_ORDER,
        "The loan term was the most important factor.",
        id="main-cue-after-name",
    ),
    pytest.param(
        "Your checking account mattered most.",
        ViolationKind.WRONG_ORDER,
        "The loan term and your checking account were the most important factors.",
        id="mattered-most",
    ),
    pytest.param(
        "Your checking account was the dominant factor.",
        ViolationKind.WRONG_ORDER,
        "The loan term was the dominant factor.",
        id="dominant",
    ),
    # A principal factor dismissed.
    pytest.param(
        "The loan term played no part in the decision.",
        ViolationKind.WRONG_ORDER,
        "The number of existing credits played a minor role and lowered the risk.",
        id="played-no-part",
    ),
    pytest.param(
        "The loan term did not matter.",
        ViolationKind.WRONG_ORDER,
        "Other instalment plans had little effect.",
        id="did-not-matter",
    ),
    pytest.param(
        "The loan term was a minor factor.",
        ViolationKind.WRONG_ORDER,
        "The number of existing credits was a minor factor.",
        id="minor-factor",
    ),
    # A numbered list states an order.
    pytest.param(
        "\n1. Checking account\n2. Loan term",
        ViolationKind.WRONG_ORDER,
        "\n1. Loan term\n2. Checking account",
        id="numbered-lines",
    ),
    pytest.param(
        "Top factors: 1) savings 2) loan term",
        ViolationKind.WRONG_ORDER,
        "Top factors: 1) loan term 2) checking account",
        id="numbered-inline",
    ),
    # Unicode look-alikes: a non-breaking space hid the factor's name.
    pytest.param(
        "The loan term (48\u00a0months) raised the risk, and your checking\u00a0account "
        "lowered it.",
        ViolationKind.WRONG_DIRECTION,
        "The loan term (48\u00a0months) raised the risk, and your checking\u00a0account "
        "also raised it.",
        id="no-break-space",
    ),
    # Decisions in words the lists lacked.
    pytest.param(
        "We are pleased to approve your application.",
        ViolationKind.WRONG_DECISION,
        "Unfortunately, we cannot approve your application.",
        id="approve",
    ),
    pytest.param(
        "Your application was successful.",
        ViolationKind.WRONG_DECISION,
        "Your application was unsuccessful.",
        id="successful",
    ),
    pytest.param(
        "We were unable to decline your application.",
        ViolationKind.WRONG_DECISION,
        "We are unable to approve your application.",
        id="unable-to-decline",
    ),
]


@pytest.mark.parametrize(("false", "kind", "true"), SHAPES)
def test_a_false_claim_fails_and_the_true_one_of_its_shape_passes(
    denied: DecisionFacts, false: str, kind: ViolationKind, true: str
) -> None:
    assert kind in violation_kinds(denied, DECLINED + false)
    verdict = verify(denied, DECLINED + true)
    assert verdict.passed, verdict.violations


# Unreadable shapes: false ones fail closed. A true one of the same shape fails closed too
# (no direction word, or a contrast the verifier does not resolve); these are rare in the
# service's own texts, which state a direction with a verb.
UNREADABLE = [
    "The loan term raised the risk, unlike your checking account.",
    "The loan term raised the risk, in contrast to your checking account.",
    "The loan term raised the risk. Your checking account had the opposite effect.",
    "Your checking account was a green flag.",
    "Your checking account reassured us.",
    "Your checking account was fine.",
    "Your checking account posed no risk.",
    "The loan term was low risk.",
]


@pytest.mark.parametrize("text", UNREADABLE)
def test_unreadable_shapes_fail_closed(denied: DecisionFacts, text: str) -> None:
    assert ViolationKind.UNVERIFIABLE in violation_kinds(denied, DECLINED + text)


def test_a_contrast_of_one_factor_is_read_as_before(denied: DecisionFacts) -> None:
    # The phrase banks write "in the opposite direction" of one factor with its verb.
    verdict = verify(denied, DECLINED + "In the opposite direction, the loan term raised the risk.")
    assert verdict.passed, verdict.violations


def test_comparatives_on_an_approval(approved: DecisionFacts) -> None:
    false = "Your application was approved. Your credit history mattered more than your checking account."
    true = "Your application was approved. Your checking account mattered more than your credit history."
    assert ViolationKind.WRONG_ORDER in violation_kinds(approved, false)
    assert verify(approved, true).passed


def test_a_main_cue_after_the_name_spans_both(denied: DecisionFacts) -> None:
    text = DECLINED + "Your checking account was the most important factor."
    wrong = [v for v in verify(denied, text).violations if v.kind is ViolationKind.WRONG_ORDER]
    assert len(wrong) == 1
    assert text[wrong[0].start : wrong[0].end] == "checking account was the most important"


@pytest.mark.parametrize(
    ("text", "passes"),
    [
        ("The loan term was the most important factor, followed by your checking account.", True),
        ("The loan term raised the risk, and the main reason was your savings.", False),
        ("Your checking account was overdrawn, and the main reason was the loan term.", True),
    ],
)
def test_a_main_cue_reads_the_factor_it_is_said_of(
    denied: DecisionFacts, text: str, passes: bool
) -> None:
    assert (ViolationKind.WRONG_ORDER not in violation_kinds(denied, DECLINED + text)) is passes


@pytest.mark.parametrize(
    ("false", "true"),
    [
        ("The loan term ranked second.", "Your checking account ranked second."),
        (
            "The loan term was the second most important factor.",
            "Your checking account was the second most important factor.",
        ),
        ("The loan term was the fourth reason.", "Your savings were the fourth reason."),
        ("The second reason was your savings.", "The second reason was your checking account."),
        (
            "Your savings were the third-biggest factor.",
            "Your employment was the third most important factor.",
        ),
    ],
)
def test_a_place_in_the_order_stated_in_words(denied: DecisionFacts, false: str, true: str) -> None:
    # "second most important" is a place, not a main-reason claim about the factor.
    assert ViolationKind.WRONG_ORDER in violation_kinds(denied, DECLINED + false)
    verdict = verify(denied, DECLINED + true)
    assert verdict.passed, verdict.violations


# Order and wording (session 8)
# A false text that passed, and a true one of its shape that passes.
ORDER_AND_WORDING = [
    # A list after an order cue is read in its sentence.
    pytest.param(
        "In order: your savings, the loan term.",
        ViolationKind.WRONG_ORDER,
        "In order: the loan term, your checking account.",
        id="in-order-list",
    ),
    pytest.param(
        "Your checking account and the loan term, in that order, raised the risk.",
        ViolationKind.WRONG_ORDER,
        "The loan term and your checking account, in that order, raised the risk.",
        id="in-that-order",
    ),
    pytest.param(
        "In order of contribution: your housing, your savings.",
        ViolationKind.WRONG_ORDER,
        "In order of contribution: your savings, your housing.",
        id="in-order-of-contribution",
    ),
    # Ordinal adverbs place items, whatever order they are written in.
    pytest.param(
        "Secondly, the loan term raised the risk. Firstly, your savings raised it.",
        ViolationKind.WRONG_ORDER,
        "Secondly, your checking account raised the risk. Firstly, the loan term raised it.",
        id="secondly-firstly",
    ),
    pytest.param(
        "First, your savings raised the risk. Finally, the loan term raised it.",
        ViolationKind.WRONG_ORDER,
        "First, the loan term raised the risk. Finally, your savings raised it.",
        id="first-finally",
    ),
    # Plural main claims: the top factors, in their order when listed after the cue.
    pytest.param(
        "The main reasons were the loan term and your savings.",
        ViolationKind.WRONG_ORDER,
        "The main reasons were the loan term and your checking account.",
        id="main-reasons-not-the-top",
    ),
    pytest.param(
        "The main reasons were your checking account and the loan term.",
        ViolationKind.WRONG_ORDER,
        "The main reasons were the loan term and your checking account.",
        id="main-reasons-out-of-order",
    ),
    pytest.param(
        "Your savings and the loan term were the main reasons.",
        ViolationKind.WRONG_ORDER,
        "Your checking account and the loan term were the main reasons.",
        id="main-reasons-before-the-cue",
    ),
    pytest.param(
        "The key factors were the loan term and your housing.",
        ViolationKind.WRONG_ORDER,
        "The key factors were the loan term and your checking account.",
        id="key-factors-unranked",
    ),
    pytest.param(
        "Your housing was one of the main reasons.",
        ViolationKind.WRONG_ORDER,
        "Your savings were one of the main reasons.",
        id="one-of-the-main-reasons",
    ),
    pytest.param(
        "The main reasons were:\n1. Loan term\n2. Savings",
        ViolationKind.WRONG_ORDER,
        "The main reasons were:\n1. Loan term\n2. Checking account",
        id="main-reasons-list-lines",
    ),
    pytest.param(
        "The main reasons were the loan term and your employment, followed by your savings.",
        ViolationKind.WRONG_ORDER,
        "The main reasons were the loan term and your checking account, followed by your savings.",
        id="main-reasons-followed-by",
    ),
    # The other side is ranked by size of contribution: other instalment plans (0.049)
    # helped more than the number of existing credits (0.040).
    pytest.param(
        "The main factors in your favour were the number of existing credits and other "
        "instalment plans.",
        ViolationKind.WRONG_ORDER,
        "The main factors in your favour were other instalment plans and the number of "
        "existing credits.",
        id="main-factors-of-the-other-side",
    ),
    pytest.param(
        "1st: your savings; 2nd: the loan term.",
        ViolationKind.WRONG_ORDER,
        "1st: the loan term; 2nd: your checking account.",
        id="items-in-digits",
    ),
    pytest.param(
        "Reason #1: your savings. Reason #2: the loan term.",
        ViolationKind.WRONG_ORDER,
        "Reason #1: the loan term. Reason #2: your checking account.",
        id="reason-number-sign",
    ),
    pytest.param(
        "Reason one: your savings. Reason two: the loan term.",
        ViolationKind.WRONG_ORDER,
        "Reason one: the loan term. Reason two: your checking account.",
        id="reason-one",
    ),
    pytest.param(
        "Reason 1: your savings. Reason 2: the loan term.",
        ViolationKind.WRONG_ORDER,
        "Reason 1: the loan term. Reason 2: your checking account.",
        id="reason-1",
    ),
    pytest.param(
        "Second reason: the loan term. First reason: your savings.",
        ViolationKind.WRONG_ORDER,
        "Second reason: your checking account. First reason: the loan term.",
        id="second-reason-first-reason",
    ),
    # A place in digits.
    pytest.param(
        "The #1 reason was your savings.",
        ViolationKind.WRONG_ORDER,
        "The #1 reason was the loan term.",
        id="number-sign-place",
    ),
    pytest.param(
        "Your savings were the 2nd most important factor.",
        ViolationKind.WRONG_ORDER,
        "Your checking account was the 2nd most important factor.",
        id="2nd-most-important",
    ),
    pytest.param(
        "The number 1 reason was your checking account.",
        ViolationKind.WRONG_ORDER,
        "The number 1 reason was the loan term.",
        id="number-1-reason",
    ),
    pytest.param(
        "Your savings came in at number two.",
        ViolationKind.WRONG_ORDER,
        "Your checking account came in at number two.",
        id="came-in-at-number-two",
    ),
    pytest.param(
        "Your savings were in second place.",
        ViolationKind.WRONG_ORDER,
        "Your checking account was in second place.",
        id="in-second-place",
    ),
    pytest.param(
        "The two main factors were your savings and the loan term.",
        ViolationKind.WRONG_ORDER,
        "The two main factors were the loan term and your checking account.",
        id="two-main-factors",
    ),
    pytest.param(
        "The loan term was the leading reason; the runner-up was your savings.",
        ViolationKind.WRONG_ORDER,
        "The loan term was the leading reason; the runner-up was your checking account.",
        id="runner-up",
    ),
    pytest.param(
        "Top 2 reasons: your savings, the loan term.",
        ViolationKind.WRONG_ORDER,
        "Top 2 reasons: the loan term, your checking account.",
        id="top-2-reasons",
    ),
    pytest.param(
        "Your savings had a bigger effect than the loan term.",
        ViolationKind.WRONG_ORDER,
        "The loan term had a bigger effect than your savings.",
        id="bigger-effect-than",
    ),
    # Equal weight: false unless the attributions are equal (savings 0.315, housing 0.310).
    pytest.param(
        "Your savings were as important as the loan term.",
        ViolationKind.WRONG_ORDER,
        "Your savings were as important as your housing.",
        id="as-important-as",
    ),
    pytest.param(
        "Your savings had as big an effect as the loan term.",
        ViolationKind.WRONG_ORDER,
        "Your savings had as big an effect as your housing.",
        id="as-big-an-effect-as",
    ),
    pytest.param(
        "Your savings and the loan term mattered equally.",
        ViolationKind.WRONG_ORDER,
        "Your savings and your housing mattered equally.",
        id="mattered-equally",
    ),
    pytest.param(
        "The loan term was not as important as your savings.",
        ViolationKind.WRONG_ORDER,
        "Your savings were not as important as the loan term.",
        id="not-as-important-as",
    ),
    # A comparative without "than" compares with the factor named before it.
    pytest.param(
        "The loan term was important, but your savings were more important.",
        ViolationKind.WRONG_ORDER,
        "Your savings were important, but the loan term was more important.",
        id="bare-more-important",
    ),
    pytest.param(
        "Your checking account raised the risk, and the loan term mattered less.",
        ViolationKind.WRONG_ORDER,
        "The loan term raised the risk, and your checking account mattered less.",
        id="bare-mattered-less",
    ),
    # Arrows with the risk or the approval as their object.
    pytest.param(
        "The loan term ↑ risk, your checking account ↓ risk.",
        ViolationKind.WRONG_DIRECTION,
        "The loan term ↑ risk, your checking account ↑ risk.",
        id="arrow-before-risk",
    ),
    pytest.param(
        "Your checking account -> lower risk.",
        ViolationKind.WRONG_DIRECTION,
        "Your checking account -> higher risk.",
        id="ascii-arrow-to-lower-risk",
    ),
    pytest.param(
        "Your checking account \u2192 a lower risk.",
        ViolationKind.WRONG_DIRECTION,
        "Your checking account \u2192 a higher risk.",
        id="right-arrow-to-lower-risk",
    ),
    pytest.param(
        "Your checking account: risk ⬇.",
        ViolationKind.WRONG_DIRECTION,
        "Your checking account: risk ⬆.",
        id="risk-then-arrow",
    ),
    pytest.param(
        "The loan term ⬆ your chances.",
        ViolationKind.WRONG_DIRECTION,
        "The loan term ⬇ your chances.",
        id="arrow-before-chances",
    ),
    # The approval as the object behind "the".
    pytest.param(
        "The loan term raised the chances of approval.",
        ViolationKind.WRONG_DIRECTION,
        "The loan term lowered the chances of approval.",
        id="the-chances-of-approval",
    ),
    pytest.param(
        "The loan term increased the probability of approval.",
        ViolationKind.WRONG_DIRECTION,
        "The loan term reduced the probability of approval.",
        id="probability-of-approval",
    ),
    # The risk or the approval as the subject of its own change.
    pytest.param(
        "Your risk went down because of the loan term.",
        ViolationKind.WRONG_DIRECTION,
        "Your risk went up because of the loan term.",
        id="risk-went-down",
    ),
    pytest.param(
        "The loan term made your chances rise.",
        ViolationKind.WRONG_DIRECTION,
        "The loan term made your risk rise.",
        id="made-chances-rise",
    ),
    pytest.param(
        "Your chances increased because of the loan term.",
        ViolationKind.WRONG_DIRECTION,
        "Your chances decreased because of the loan term.",
        id="chances-increased",
    ),
    pytest.param(
        "The loan term caused your score to drop.",
        ViolationKind.WRONG_DIRECTION,
        "The loan term caused your score to climb.",
        id="score-to-drop",
    ),
    pytest.param(
        "The loan term: risk down.",
        ViolationKind.WRONG_DIRECTION,
        "The loan term: risk up.",
        id="risk-down-verbless",
    ),
    pytest.param(
        "The loan term pushed your model score down.",
        ViolationKind.WRONG_DIRECTION,
        "The loan term pushed your model score up.",
        id="pushed-model-score-down",
    ),
    # Decision idioms.
    pytest.param(
        "Your application got the green light.",
        ViolationKind.WRONG_DECISION,
        "Your application did not get the green light.",
        id="green-light",
    ),
    pytest.param(
        "We gave your application a thumbs-up.",
        ViolationKind.WRONG_DECISION,
        "We gave your application a thumbs-down.",
        id="thumbs-up",
    ),
    pytest.param(
        "Congratulations! The loan term raised the risk.",
        ViolationKind.WRONG_DECISION,
        "We regret to inform you that the loan term raised the risk.",
        id="congratulations",
    ),
    pytest.param(
        "Your savings were on a par with the loan term.",
        ViolationKind.WRONG_ORDER,
        "Your savings were on a par with your housing.",
        id="on-a-par-with",
    ),
    pytest.param(
        "Your checking account ⬇\ufe0f risk.",
        ViolationKind.WRONG_DIRECTION,
        "Your checking account ⬆\ufe0f risk.",
        id="emoji-arrow",
    ),
    pytest.param(
        "You qualified for the loan.",
        ViolationKind.WRONG_DECISION,
        "You are not eligible for the loan.",
        id="qualified",
    ),
    pytest.param(
        "Good news: your loan is a go.",
        ViolationKind.WRONG_DECISION,
        "Your application did not go through.",
        id="is-a-go",
    ),
    pytest.param(
        "Your loan was okayed.",
        ViolationKind.WRONG_DECISION,
        "Your loan was not okayed.",
        id="okayed",
    ),
    pytest.param(
        "Your application got the go-ahead.",
        ViolationKind.WRONG_DECISION,
        "Your application did not get the go-ahead.",
        id="go-ahead",
    ),
    # "score" on this model is the probability of default (the manifest says so).
    pytest.param(
        "The loan term lowered your score.",
        ViolationKind.WRONG_DIRECTION,
        "The loan term raised your score.",
        id="score-is-the-risk",
    ),
]


@pytest.mark.parametrize(("false", "kind", "true"), ORDER_AND_WORDING)
def test_order_and_wording_false_fails_and_true_passes(
    denied: DecisionFacts, false: str, kind: ViolationKind, true: str
) -> None:
    assert kind in violation_kinds(denied, DECLINED + false)
    verdict = verify(denied, DECLINED + true)
    assert verdict.passed, verdict.violations


@pytest.mark.parametrize(
    "text",
    [
        # "in order to" states a purpose, not a list.
        "In order to explain the decision: your savings raised the risk, as did the loan term.",
        # Membership, not which factors are the main ones.
        "The main reasons included your savings.",
        # A multiplier is a comparative, read by the comparative cues.
        "The loan term was twice as important as your savings.",
        # "as large as" alone compares values, not effects.
        "Your credit amount (4,308 DM) was as large as your savings.",
    ],
)
def test_order_cues_that_claim_no_order_of_their_list(denied: DecisionFacts, text: str) -> None:
    verdict = verify(denied, DECLINED + text)
    assert verdict.passed, verdict.violations


def test_a_place_in_digits_is_no_number_of_the_decision(denied: DecisionFacts) -> None:
    # "#2" is a place, not a value of the checking account nor a number of the decision.
    verdict = verify(
        denied, DECLINED + "Your checking account was the #2 reason, and it raised the risk."
    )
    assert verdict.passed, verdict.violations


# Arrows with no object: "loan term ↑" may mean a long term or a raised risk. True or
# false, they fail closed; the service's texts state a direction with a verb.
@pytest.mark.parametrize(
    "text",
    [
        "The loan term (48 months) ↑.",
        "The loan term (48 months) ↓.",
        "Your checking account ⬇, your savings ⬇.",
        "Your savings -> the decision.",
        "Your checking account ↗ raised the risk.",
        # Not an arrow, but a judgement with no direction: "in order" says fine.
        "Your checking account was in order.",
    ],
)
def test_arrows_without_an_object_and_judgements_fail_closed(
    denied: DecisionFacts, text: str
) -> None:
    assert ViolationKind.UNVERIFIABLE in violation_kinds(denied, DECLINED + text)


def test_a_decision_idiom_on_an_approval(approved: DecisionFacts) -> None:
    assert ViolationKind.WRONG_DECISION in violation_kinds(
        approved, "We turned your application down."
    )
    assert ViolationKind.WRONG_DECISION in violation_kinds(approved, "Sadly, it is a no-go.")
    verdict = verify(approved, "Your application got the green light.")
    assert verdict.passed, verdict.violations


def _with_score(facts: DecisionFacts, meaning: str, adverse_when: str) -> DecisionFacts:
    manifest = facts.manifest
    decision = manifest.decision.model_copy(update={"adverse_when": adverse_when})
    return replace(
        facts,
        manifest=manifest.model_copy(update={"score_meaning": meaning, "decision": decision}),
    )


def test_a_score_whose_meaning_the_manifest_does_not_say_fails_closed(
    denied: DecisionFacts,
) -> None:
    # A credit score going up is good, a risk score going up is bad: with no word of which
    # this model's score is, "raised your score" is read as neither.
    unsaid = _with_score(denied, "model output for class 1", "score_at_or_above")
    for text in (
        "The loan term raised your score.",
        "The loan term lowered your score.",
        "The loan term pushed your score up.",
    ):
        assert ViolationKind.UNVERIFIABLE in violation_kinds(unsaid, DECLINED + text)
    # The same text about the risk itself is read as before.
    verdict = verify(unsaid, DECLINED + "The loan term raised your risk score.")
    assert verdict.passed, verdict.violations


def test_a_score_the_manifest_calls_the_approval_side(denied: DecisionFacts) -> None:
    repays = _with_score(denied, "probability that the applicant repays the loan", "score_below")
    assert ViolationKind.WRONG_DIRECTION in violation_kinds(
        repays, DECLINED + "The loan term raised your score."
    )
    verdict = verify(repays, DECLINED + "The loan term lowered your score.")
    assert verdict.passed, verdict.violations
    # "does not default" is the approval side too.
    no_default = _with_score(
        denied, "probability that the applicant does not default", "score_below"
    )
    verdict = verify(no_default, DECLINED + "Your score was lowered by the loan term.")
    assert verdict.passed, verdict.violations


def test_a_score_meaning_the_decision_rule_contradicts_fails_closed(
    denied: DecisionFacts,
) -> None:
    # "probability of default", adverse below the threshold: one of the two is wrong.
    contradicted = _with_score(denied, "probability that the applicant defaults", "score_below")
    assert ViolationKind.UNVERIFIABLE in violation_kinds(
        contradicted, DECLINED + "The loan term raised your score."
    )


def test_outweighed_by_is_read_as_the_longer_cue(denied: DecisionFacts) -> None:
    # "outweighed" (more) inside "outweighed by" (less) was read as both.
    verdict = verify(denied, DECLINED + "Your savings were outweighed by the loan term.")
    assert verdict.passed, verdict.violations
    assert ViolationKind.WRONG_ORDER in violation_kinds(
        denied, DECLINED + "The loan term was outweighed by your savings."
    )


@pytest.mark.parametrize(
    ("false", "true"),
    [
        (
            "Your credit history mattered more than having no checking account.",
            "Having no checking account mattered more than your credit history.",
        ),
        (
            "The main reasons were your credit history and having no checking account.",
            "The main reasons were having no checking account and your credit history.",
        ),
        (
            "Firstly, your credit history helped. Secondly, having no checking account helped.",
            "Firstly, having no checking account helped. Secondly, your credit history helped.",
        ),
    ],
)
def test_a_factor_named_inside_its_own_value_has_its_place_in_the_order(
    approved: DecisionFacts, false: str, true: str
) -> None:
    # "no checking account" is the value of the checking account, which it names: not a
    # mention for the value checks, but the factor's place in an order claim.
    approval = "Your application was approved. "
    assert ViolationKind.WRONG_ORDER in violation_kinds(approved, approval + false)
    verdict = verify(approved, approval + true)
    assert verdict.passed, verdict.violations
