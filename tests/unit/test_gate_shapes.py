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

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.models.registry import ModelRegistry
from expound.rankers.gate import ViolationKind, verify
from tests.conftest import GBM, LOGISTIC
from tests.support.facts_util import facts_for, violation_kinds

ANALYST = Audience.ANALYST

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


# Values (session 8)

APPROVED = "Your application was approved. "


# A factor named inside its own actual value ("no checking account" on the approval): the
# name was dropped as a word of the value, so the true order was read off the next factor
# and the value's false direction or dismissal was never read.
SELF_NAMED = [
    pytest.param(
        "Your credit history was the most important factor, followed by having no checking "
        "account.",
        ViolationKind.WRONG_ORDER,
        "Having no checking account was the most important factor, followed by your credit "
        "history.",
        id="self-named-main",
    ),
    pytest.param(
        "Having no checking account raised the risk.",
        ViolationKind.WRONG_DIRECTION,
        "Having no checking account lowered the risk.",
        id="self-named-direction",
    ),
    pytest.param(
        "No checking account was a minor factor.",
        ViolationKind.WRONG_ORDER,
        "No checking account at this bank helped most.",
        id="self-named-dismissed",
    ),
]


@pytest.mark.parametrize(("false", "kind", "true"), SELF_NAMED)
def test_a_factor_named_inside_its_own_value_is_read(
    approved: DecisionFacts, false: str, kind: ViolationKind, true: str
) -> None:
    assert kind in violation_kinds(approved, APPROVED + false)
    verdict = verify(approved, APPROVED + true)
    assert verdict.passed, verdict.violations
    assert "checking_account" in verdict.mentioned


# Values stated beside the wrong factor, as shares, in words, or by size (denied example).
# Each false text passed: a number was accepted when any factor of its clause (or the
# decision) held it, whatever it was said of.
VALUES = [
    # A quantity is bound to the factor named next to it: 48 is the loan term's.
    pytest.param(
        "The loan term and your savings of 48 DM raised the risk.",
        ViolationKind.UNVERIFIABLE,
        "The loan term of 48 months and your savings of less than 100 DM raised the risk.",
        id="number-beside-the-wrong-factor",
    ),
    pytest.param(
        "The loan term and your savings (48) raised the risk.",
        ViolationKind.UNVERIFIABLE,
        "The loan term (48) and your savings (less than 100 DM) raised the risk.",
        id="bare-number-beside-the-wrong-factor",
    ),
    pytest.param(
        "The loan term (48 months) raised the risk by 0.825 and your checking account by 1.255.",
        ViolationKind.UNVERIFIABLE,
        "The loan term (48 months) raised the risk by 1.255 and your checking account by 0.825.",
        id="magnitudes-traded",
    ),
    pytest.param(
        "Your savings of 4 DM raised the risk.",
        ViolationKind.UNVERIFIABLE,
        "Your savings of less than 100 DM raised the risk.",
        id="number-of-the-decision-as-a-value",
    ),
    # A share of the decision is the factor's share of the push (30%), not another fact
    # (48 months, the 94% probability, the 50% threshold).
    pytest.param(
        "The loan term accounted for 48% of the decision.",
        ViolationKind.WRONG_CONTEXT,
        "The loan term accounted for 30% of the decision.",
        id="share-equal-to-another-fact",
    ),
    pytest.param(
        "The loan term accounted for 94 percent of the decision.",
        ViolationKind.WRONG_CONTEXT,
        "The loan term accounted for 30 percent of the decision.",
        id="share-in-words",
    ),
    pytest.param(
        "The probability of default was 50%, mainly because of the loan term.",
        ViolationKind.UNSUPPORTED_NUMBER,
        "The probability of default was 94%, mainly because of the loan term.",
        id="probability-beside-a-factor",
    ),
    pytest.param(
        "The score was 0.50 against a threshold of 0.938.",
        ViolationKind.UNSUPPORTED_NUMBER,
        "The score was 0.938 against a threshold of 0.50.",
        id="score-and-threshold-swapped",
    ),
    # Number words, converted: 48 months is four years.
    pytest.param(
        "Your loan term of thirty-six months raised the risk.",
        ViolationKind.WRONG_VALUE,
        "Your loan term of forty-eight months raised the risk.",
        id="number-words",
    ),
    pytest.param(
        "A two-year loan term raised the risk.",
        ViolationKind.WRONG_VALUE,
        "A four-year loan term raised the risk.",
        id="years-of-a-term-in-months",
    ),
    # Halves: 48 months is no two and a half years (30 months), nor a year and a half.
    pytest.param(
        "The loan term of two-and-a-half years raised the risk.",
        ViolationKind.WRONG_VALUE,
        "The loan term of four years raised the risk.",
        id="hyphenated-half-years",
    ),
    pytest.param(
        "The loan term of two and a half years raised the risk.",
        ViolationKind.WRONG_VALUE,
        "The loan term of forty-eight months raised the risk.",
        id="and-a-half-years",
    ),
    pytest.param(
        "A loan term of a year and a half raised the risk.",
        ViolationKind.WRONG_VALUE,
        "A loan term of four years raised the risk.",
        id="a-year-and-a-half",
    ),
    pytest.param(
        "The loan term of 1.5 years raised the risk.",
        ViolationKind.WRONG_VALUE,
        "The loan term of 4 years raised the risk.",
        id="decimal-years",
    ),
    pytest.param(
        "You asked for 4,308 DM for three years.",
        ViolationKind.UNSUPPORTED_NUMBER,
        "You asked for 4,308 DM for four years.",
        id="quantity-with-no-factor-named",
    ),
    pytest.param(
        "Your loan term of under three years raised the risk.",
        ViolationKind.WRONG_VALUE,
        "Your loan term of over three years raised the risk.",
        id="quantity-as-a-bound",
    ),
    pytest.param(
        "The loan term (48 months) raised the risk by 1.255, roughly 48% of the total push.",
        ViolationKind.WRONG_CONTEXT,
        "The loan term (48 months) raised the risk by 1.255, roughly 30% of the total push.",
        id="share-after-a-magnitude",
    ),
    # A share of the decision in words: the loan term's is 30% of the push.
    pytest.param(
        "The loan term accounted for nearly half of the decision.",
        ViolationKind.WRONG_CONTEXT,
        "The loan term accounted for about a third of the decision.",
        id="share-in-fraction-words",
    ),
    pytest.param(
        "Most of the decision came from the loan term.",
        ViolationKind.WRONG_CONTEXT,
        "A modest part of the decision came from your checking account.",
        id="share-as-a-range",
    ),
    # The bound of the actual category (savings: less than 100 DM), the other way round.
    pytest.param(
        "Your savings of 100 DM or more raised the risk.",
        ViolationKind.WRONG_VALUE,
        "Your savings of under 100 DM raised the risk.",
        id="bound-of-the-category-reversed",
    ),
    # Size words about a value, judged by its recorded percentile (the 96th).
    pytest.param(
        "The loan term was below average, which raised the risk.",
        ViolationKind.WRONG_VALUE,
        "The loan term was above average, which raised the risk.",
        id="size-against-the-average",
    ),
    pytest.param(
        "The loan term was short, which raised the risk.",
        ViolationKind.WRONG_VALUE,
        "The loan term was long, which raised the risk.",
        id="size-after-the-name",
    ),
    pytest.param(
        "A short loan term raised the risk.",
        ViolationKind.WRONG_VALUE,
        "A lengthy loan term raised the risk.",
        id="size-before-the-name",
    ),
]


@pytest.mark.parametrize(("false", "kind", "true"), VALUES)
def test_a_false_value_fails_and_the_true_one_of_its_shape_passes(
    denied: DecisionFacts, false: str, kind: ViolationKind, true: str
) -> None:
    assert kind in violation_kinds(denied, DECLINED + false)
    verdict = verify(denied, DECLINED + true)
    assert verdict.passed, verdict.violations


# Read only where the record holds what they state; otherwise they fail closed. A true
# text of the same shape fails closed too ("over four years" of employment between four
# and seven years; "low" savings of less than 100 DM; a share said of "it"): the
# categories hold no amount and no percentile, a pronoun names no factor, and the
# service's own texts quote the category and name the factor instead.
UNREADABLE_VALUES = [
    "Your employment of over four years raised the risk.",
    "The loan term raised the risk. It accounted for 94% of the decision.",
    "Your savings of 48 DM counted against you.",
    "Your savings were high, which raised the risk.",
    "Your low savings raised the risk.",
    "The loan term raised the risk by 48%.",
    # A bound with no factor named in its clause: "it" may be any factor in months.
    "It was over 60 months.",
    "The loan term raised the risk. It was under 24 months.",
    "It was over 24 months.",
]


@pytest.mark.parametrize("text", UNREADABLE_VALUES)
def test_unreadable_values_fail_closed(denied: DecisionFacts, text: str) -> None:
    assert ViolationKind.UNVERIFIABLE in violation_kinds(denied, DECLINED + text)


def test_a_four_year_loan_is_the_approval_one_year_loan(approved: DecisionFacts) -> None:
    # The approved applicant's term is 12 months: a four-year loan is false there, even
    # where the text names no factor; a share is its own factor's (checking account: 22%).
    assert ViolationKind.UNSUPPORTED_NUMBER in violation_kinds(
        approved, APPROVED + "A four-year loan lowered the risk."
    )
    assert verify(approved, APPROVED + "A one-year loan term lowered the risk.").passed
    assert ViolationKind.WRONG_CONTEXT in violation_kinds(
        approved, APPROVED + "Having no checking account accounted for 30% of the decision."
    )
    assert verify(
        approved, APPROVED + "Having no checking account accounted for 22% of the decision."
    ).passed
    # The probability of default, named beside a factor, is the decision's (3%).
    assert ViolationKind.UNVERIFIABLE in violation_kinds(
        approved, APPROVED + "Having no checking account lowered your risk of default to 30%."
    )
    assert verify(
        approved, APPROVED + "Having no checking account lowered your risk of default to 3%."
    ).passed


def test_a_magnitude_of_its_own_is_no_value_of_the_factor(denied: DecisionFacts) -> None:
    # "by 1.255" is the loan term's contribution, not a term of 1.255 months.
    verdict = verify(denied, DECLINED + "The loan term raised the risk by 1.255.")
    assert verdict.passed, verdict.violations
    assert ViolationKind.UNVERIFIABLE in violation_kinds(
        denied, DECLINED + "The loan term raised the risk by 0.825."
    )


@pytest.mark.parametrize(
    "text",
    [
        "The loan term of 48 weeks raised the risk.",
        "The amount requested of nine thousand DM raised the risk.",
    ],
)
def test_weeks_and_thousands_are_read(denied: DecisionFacts, text: str) -> None:
    # 48 weeks is no 48 months; "nine thousand" is no 4,308. The true forms of these
    # shapes hold numbers no fact holds ("208 weeks"), failing the number checks anyway.
    assert ViolationKind.WRONG_VALUE in violation_kinds(denied, DECLINED + text)


def test_a_value_near_its_magnitude_is_still_its_value(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    # A one-month term whose magnitude is 0.584 (the logistic model): "1" is the value,
    # not the magnitude read to the nearest whole number (an analyst minor-factor phrase).
    facts = facts_for(registry, LOGISTIC, {**denied_applicant, "duration_months": 1}, ANALYST)
    term, rate = facts.factors["duration_months"], facts.factors["installment_rate"]
    text = (
        "The model declined the application. Less weight fell on the length of the loan "
        f"term (1 month, {abs(term.contribution):.3f}) and the instalment as a share of "
        f"disposable income ({rate.value_text}, {abs(rate.contribution):.3f})."
    )
    wrong = {ViolationKind.WRONG_VALUE, ViolationKind.UNVERIFIABLE}
    assert not wrong & violation_kinds(facts, text)
    assert ViolationKind.WRONG_VALUE in violation_kinds(
        facts, text.replace("(1 month", "(2 months")
    )


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
    # A lone item naming its place ("Reason #2: ..."): read as the place it states, not
    # only against the other items (the lead's probe after the merge: it passed alone).
    pytest.param(
        "Reason #2: the length of the loan term (48 months).",
        ViolationKind.WRONG_ORDER,
        "Reason #2: your checking account (overdrawn).",
        id="lone-reason-hash-item",
    ),
    pytest.param(
        "Reason two: the length of the loan term.",
        ViolationKind.WRONG_ORDER,
        "Reason one: the length of the loan term.",
        id="lone-reason-spelled-item",
    ),
    pytest.param(
        "Factor 3 - your savings.",
        ViolationKind.WRONG_ORDER,
        "Factor 4 - your savings.",
        id="lone-factor-numeral-item",
    ),
    # A main cue whose clause goes on ("..., and X is second") is the factor's before it.
    pytest.param(
        "The loan term is the top factor, and your savings are second.",
        ViolationKind.WRONG_ORDER,
        "The loan term is the top factor, and your checking account is second.",
        id="top-factor-and-second",
    ),
    pytest.param(
        "The loan term was the main reason, and your checking account was third.",
        ViolationKind.WRONG_ORDER,
        "The loan term was the main reason, and your employment was third.",
        id="main-reason-and-third",
    ),
    pytest.param(
        "The loan term is the top factor, and so is your checking account.",
        ViolationKind.WRONG_ORDER,
        "The loan term is the top factor, and your checking account raised the risk too.",
        id="top-factor-and-so-is",
    ),
    # "The most important factor after X" is the place after X's (the savings are 4th).
    pytest.param(
        "Your savings were the most important factor after the loan term.",
        ViolationKind.WRONG_ORDER,
        "Your checking account was the most important factor after the loan term.",
        id="most-important-after",
    ),
    pytest.param(
        "The biggest factor after your checking account was your savings.",
        ViolationKind.WRONG_ORDER,
        "The biggest factor after your checking account was your employment.",
        id="biggest-after-subject-later",
    ),
    pytest.param(
        "Your savings mattered most after the loan term.",
        ViolationKind.WRONG_ORDER,
        "Your savings mattered most after your employment.",
        id="mattered-most-after",
    ),
    # A lone item placed relatively ("2nd: ...", "Second: ..."), read as "Reason #2:" is.
    pytest.param(
        "2nd: the loan term.",
        ViolationKind.WRONG_ORDER,
        "2nd: your checking account.",
        id="lone-nth-item",
    ),
    pytest.param(
        "Second: the loan term raised the risk.",
        ViolationKind.WRONG_ORDER,
        "Second: your checking account raised the risk.",
        id="lone-ordinal-item",
    ),
    pytest.param(
        "#3: your savings.",
        ViolationKind.WRONG_ORDER,
        "#4: your savings.",
        id="lone-hash-item",
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
    # Lending and funding said of the applicant's loan state an approval.
    pytest.param(
        "We are happy to lend you the money.",
        ViolationKind.WRONG_DECISION,
        "We are unable to lend you the money.",
        id="lend-you",
    ),
    pytest.param(
        "Your loan will be funded next week.",
        ViolationKind.WRONG_DECISION,
        "Your loan will not be funded.",
        id="funded",
    ),
    pytest.param(
        "The money will be paid out to you shortly.",
        ViolationKind.WRONG_DECISION,
        "The money will not be paid out, as the loan term raised the risk.",
        id="paid-out",
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


# Category values in free words (session 9). The savings are "less than 100 DM", the
# checking account "overdrawn (balance below 0 DM)"; each false text passed: "no savings"
# named no category (the description is "no savings or unknown"), a negated category was
# read as named, and an absence ("no savings") as no value at all.
CATEGORY_WORDS = [
    pytest.param(
        "You have no savings.",
        ViolationKind.WRONG_VALUE,
        "Your savings are below 100 DM.",
        id="no-savings",
    ),
    pytest.param(
        "You have no savings account.",
        ViolationKind.WRONG_VALUE,
        "You have savings of less than 100 DM.",
        id="no-savings-account",
    ),
    pytest.param(
        "You don't have any savings.",
        ViolationKind.WRONG_VALUE,
        "You don't have any guarantor.",
        id="dont-have-any",
    ),
    pytest.param(
        "Your savings were unknown.",
        ViolationKind.WRONG_VALUE,
        "Your savings were less than 100 DM.",
        id="one-alternative-of-a-description",
    ),
    pytest.param(
        "Your checking account was not overdrawn.",
        ViolationKind.WRONG_VALUE,
        "Your checking account was overdrawn.",
        id="negated-actual-category",
    ),
    pytest.param(
        "Your savings were not below 100 DM.",
        ViolationKind.WRONG_VALUE,
        "Your savings were not unknown.",
        id="negated-category-name",
    ),
    pytest.param(
        "Your checking account had a positive balance.",
        ViolationKind.UNVERIFIABLE,
        "Your checking account was overdrawn, which raised the risk.",
        id="positive-balance",
    ),
    pytest.param(
        "Your checking account had your salary paid in.",
        ViolationKind.UNVERIFIABLE,
        "Your checking account was overdrawn (balance below 0 DM).",
        id="words-of-another-category",
    ),
    pytest.param(
        "You have no employment.",
        ViolationKind.UNVERIFIABLE,
        "You have no other instalment plans.",
        id="absence-of-a-factor-with-no-such-category",
    ),
    # A count stated absent is none: the applicant supports one person.
    pytest.param(
        "You have no dependants.",
        ViolationKind.WRONG_VALUE,
        "You have no guarantor.",
        id="absence-of-a-count",
    ),
]


@pytest.mark.parametrize(("false", "kind", "true"), CATEGORY_WORDS)
def test_a_category_in_free_words_is_read(
    denied: DecisionFacts, false: str, kind: ViolationKind, true: str
) -> None:
    assert kind in violation_kinds(denied, DECLINED + false)
    verdict = verify(denied, DECLINED + true)
    assert verdict.passed, verdict.violations


def test_an_absent_category_on_an_approval(approved: DecisionFacts) -> None:
    # The approved applicant has no checking account: stated as an absence, it is true.
    verdict = verify(approved, APPROVED + "You don't have a checking account.")
    assert verdict.passed, verdict.violations
    assert ViolationKind.WRONG_VALUE in violation_kinds(
        approved, APPROVED + "Your checking account was overdrawn."
    )
    # Its presence is the other way round: no category of absence.
    assert ViolationKind.WRONG_VALUE in violation_kinds(
        approved, APPROVED + "You have a checking account."
    )
    verdict = verify(approved, APPROVED + "You hold no checking account.")
    assert verdict.passed, verdict.violations


def test_a_category_word_inside_the_factors_name_is_no_value(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    # "guarantor" in the name "co-applicant or guarantor on the loan" is no statement of
    # the actual category (a guarantor): "(neither)" beside it is a wrong value.
    facts = facts_for(registry, GBM, {**denied_applicant, "other_debtors": "guarantor"})
    name = "The co-applicant or guarantor on the loan"
    assert ViolationKind.WRONG_VALUE in violation_kinds(facts, DECLINED + name + " (neither).")
    verdict = verify(facts, DECLINED + name + " (a guarantor).")
    assert verdict.passed, verdict.violations


@pytest.mark.parametrize("decimals", [3, 2])
def test_magnitudes_of_two_factors_in_one_clause(denied: DecisionFacts, decimals: int) -> None:
    # Each magnitude is its own factor's, read from the facts and rounded: the other
    # factor's magnitude beside it was read as a value of the loan term (in months).
    term, account = (
        denied.factors[f].contribution for f in ("duration_months", "checking_account")
    )
    said = "The loan term raised the risk by {:.{d}f}, and your checking account raised it by {:.{d}f}."
    verdict = verify(denied, DECLINED + said.format(term, account, d=decimals))
    assert verdict.passed, verdict.violations
    assert ViolationKind.UNVERIFIABLE in violation_kinds(
        denied, DECLINED + said.format(account, term, d=decimals)
    )


@pytest.mark.parametrize(
    ("false", "true"),
    [
        (
            "The main reasons were the loan term and your employment.",
            "The main reasons were the loan term and your checking account.",
        ),
        (
            "The loan term and your savings were the main reasons.",
            "The loan term and your checking account were the main reasons.",
        ),
    ],
)
def test_plural_main_reasons_are_the_top_ones(denied: DecisionFacts, false: str, true: str) -> None:
    # Naming the top two of four principal reasons as "the main reasons" is true of an
    # ordered list; naming #1 and #3 (or #4) leaves out one that outweighs the last.
    text = DECLINED + false
    wrong = [v for v in verify(denied, text).violations if v.kind is ViolationKind.WRONG_ORDER]
    assert wrong
    # The span covers the claim, names and cue, wherever the names stand.
    assert "main reasons" in text[wrong[0].start : wrong[0].end]
    verdict = verify(denied, DECLINED + true)
    assert verdict.passed, verdict.violations


@pytest.mark.parametrize(
    "text",
    [
        # "own" of "own home", "other" of "credits at other banks": words that name no
        # category alone, read as ordinary words.
        "Your housing raised the risk on its own.",
        "Your credit history raised the risk, more than the other factors.",
        # Words of the actual category's own description, not a whole one.
        "Your checking account balance was overdrawn, which raised the risk.",
    ],
)
def test_ordinary_words_of_a_description_are_no_value(denied: DecisionFacts, text: str) -> None:
    verdict = verify(denied, DECLINED + text)
    assert verdict.passed, verdict.violations
