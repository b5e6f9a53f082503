"""The gate on the claims a content plan makes possible: context, shares, counterfactuals,
method, plan coverage, and failing closed on what it cannot read."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from expound.domain import Audience
from expound.explainers.facts import DecisionFacts
from expound.explainers.plan import SHARE_WORDS
from expound.generators.deterministic import (
    NO_RECOURSE,
    counterfactual_sentence,
    deterministic_explanation,
)
from expound.models.registry import ModelRegistry
from expound.rankers.gate import ViolationKind, verify
from tests.conftest import GBM, LOGISTIC
from tests.support.facts_util import facts_for, violation_kinds


@pytest.fixture
def denied(registry: ModelRegistry, denied_applicant: dict[str, Any]) -> DecisionFacts:
    return facts_for(registry, GBM, denied_applicant)


@pytest.fixture
def analyst(registry: ModelRegistry, denied_applicant: dict[str, Any]) -> DecisionFacts:
    return facts_for(registry, GBM, denied_applicant, Audience.ANALYST)


def passes(facts: DecisionFacts, text: str) -> None:
    verdict = verify(facts, text)
    assert verdict.passed, (text, verdict.violations)


def term(facts: DecisionFacts) -> tuple[int, float]:
    assert facts.plan is not None
    planned = facts.plan.factor("duration_months")
    assert planned is not None and planned.percentile is not None
    assert isinstance(planned.typical_favourable, float)
    return planned.percentile, planned.typical_favourable


def test_percentiles_must_be_the_recorded_ones(denied: DecisionFacts) -> None:
    percentile, _ = term(denied)
    sentence = "The length of the loan term of 48 months is at the {}th percentile of the sample."
    passes(denied, sentence.format(percentile))
    assert ViolationKind.WRONG_CONTEXT in violation_kinds(denied, sentence.format(percentile - 20))
    # A percentile the plan never recorded (a category has none).
    assert ViolationKind.WRONG_CONTEXT in violation_kinds(
        denied, "Your checking account is at the 40th percentile of the sample."
    )
    # A percentile tied to no factor cannot be read.
    assert ViolationKind.UNVERIFIABLE in violation_kinds(denied, "This is at the 96th percentile.")


def test_typical_values_must_be_the_recorded_ones(denied: DecisionFacts) -> None:
    _, typical = term(denied)
    sentence = "Among favourable decisions, the typical length of the loan term is {:.0f} months."
    passes(denied, sentence.format(typical))
    assert ViolationKind.WRONG_CONTEXT in violation_kinds(denied, sentence.format(typical + 6))
    assert denied.plan is not None
    checking = denied.plan.factor("checking_account")
    assert checking is not None and checking.typical_favourable == "no_account"
    passes(
        denied, "Among favourable decisions, the typical checking account is no checking account."
    )
    assert ViolationKind.WRONG_CONTEXT in violation_kinds(
        denied, "Among favourable decisions, the typical checking account is overdrawn."
    )


def test_share_words_must_match_the_share(denied: DecisionFacts) -> None:
    assert denied.plan is not None
    planned = denied.plan.factor("duration_months")
    assert planned is not None and planned.share_words is not None
    sentence = "The length of the loan term accounted for {} of the total push."
    passes(denied, sentence.format(planned.share_words))
    for _, _, words in SHARE_WORDS:
        if words != planned.share_words:
            assert ViolationKind.WRONG_CONTEXT in violation_kinds(denied, sentence.format(words))


def test_base_rate_and_mean_score(denied: DecisionFacts) -> None:
    assert denied.plan is not None and denied.plan.reference is not None
    share = round(denied.plan.reference.favourable_share * 100)
    mean = denied.plan.reference.mean_score
    passes(denied, f"In the reference sample, {share}% of decisions were favourable.")
    passes(denied, f"In the reference sample the mean score was {mean:.3f}.")
    wrong = f"In the reference sample, {share - 10}% of decisions were favourable."
    assert ViolationKind.WRONG_CONTEXT in violation_kinds(denied, wrong)
    wrong = f"In the reference sample the mean score was {mean + 0.1:.3f}."
    assert ViolationKind.WRONG_CONTEXT in violation_kinds(denied, wrong)


def test_only_recorded_counterfactuals_may_be_stated(denied: DecisionFacts) -> None:
    assert denied.plan is not None and denied.plan.recourse is not None
    (first, *_) = denied.plan.recourse.counterfactuals
    stated = counterfactual_sentence(denied, first)
    verdict = verify(denied, stated)
    assert verdict.passed, verdict.violations
    assert verdict.counterfactuals == [first]
    wrong_score = stated.replace(f"{first.score:.3f}", f"{first.score - 0.1:.3f}")
    assert ViolationKind.WRONG_COUNTERFACTUAL in violation_kinds(denied, wrong_score)
    invented = (
        "With the length of the loan term at 36 months instead of 48 months, the score would "
        f"have been {first.score:.3f}, below the 0.50 threshold."
    )
    if [c.feature for c in first.changes] != ["duration_months"] or first.changes[0].after != 36:
        assert ViolationKind.WRONG_COUNTERFACTUAL in violation_kinds(denied, invented)
    unrecorded = (
        "Had the purpose of the loan been a used car, the decision would have been approve."
    )
    assert ViolationKind.WRONG_COUNTERFACTUAL in violation_kinds(denied, unrecorded)
    # "None found" is false when one was found.
    assert ViolationKind.WRONG_COUNTERFACTUAL in violation_kinds(denied, NO_RECOURSE)


def test_counterfactuals_need_a_record(denied: DecisionFacts) -> None:
    assert denied.plan is not None and denied.plan.recourse is not None
    stated = counterfactual_sentence(denied, denied.plan.recourse.counterfactuals[0])
    without = dataclasses.replace(denied, plan=denied.plan.model_copy(update={"recourse": None}))
    assert ViolationKind.WRONG_COUNTERFACTUAL in violation_kinds(without, stated)


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_exact_is_claimed_only_of_exact_attributions(
    registry: ModelRegistry, denied_applicant: dict[str, Any], model_id: str
) -> None:
    facts = facts_for(registry, model_id, denied_applicant)
    claim = "Attributions are exact SHAP values."
    passes(facts, claim)
    sampled = facts.attributions.model_copy(update={"algorithm": "permutation-sampling"})
    estimated = dataclasses.replace(facts, attributions=sampled)
    assert ViolationKind.WRONG_METHOD in violation_kinds(estimated, claim)
    assert ViolationKind.WRONG_METHOD in violation_kinds(
        estimated, "The SHAP values here are exact."
    )
    passes(estimated, "Attributions are estimated SHAP values.")


def test_analyst_texts_must_cover_the_plan(analyst: DecisionFacts, denied: DecisionFacts) -> None:
    assert analyst.plan is not None
    text = deterministic_explanation(analyst)
    passes(analyst, text)
    dropped = analyst.plan.factors[-1].feature
    partial = " ".join(s for s in text.split(". ") if not s.startswith(dropped))
    verdict = verify(analyst, partial)
    assert ViolationKind.PLAN_NOT_COVERED in {v.kind for v in verdict.violations}
    assert any(dropped in v.message for v in verdict.violations)
    # An applicant's text is not held to the analyst's plan.
    passes(denied, "Your application was declined.")


def test_compliance_texts_must_cover_the_plan(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, Audience.COMPLIANCE)
    text = deterministic_explanation(facts)
    passes(facts, text)
    reasons_only = text.split(" Factors by size")[0]
    assert facts.plan is not None
    reason_features = {name for r in facts.reasons for name in r.features}
    if any(p.feature not in reason_features for p in facts.plan.factors):
        assert ViolationKind.PLAN_NOT_COVERED in violation_kinds(facts, reasons_only)


@pytest.mark.parametrize(
    "text",
    [
        "The length of the loan term dragged your application down.",
        "Your checking account boosted the outcome.",
        "The length of the loan term weighed heavily.",
        "Your checking account penalised the application.",
    ],
)
def test_a_direction_the_verifier_cannot_read_fails_closed(
    denied: DecisionFacts, text: str
) -> None:
    verdict = verify(denied, text)
    assert not verdict.passed
    assert ViolationKind.UNVERIFIABLE in {v.kind for v in verdict.violations}


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
@pytest.mark.parametrize("audience", list(Audience))
def test_deterministic_texts_pass_the_gate_and_follow_the_plan(
    registry: ModelRegistry,
    denied_applicant: dict[str, Any],
    approved_applicant: dict[str, Any],
    model_id: str,
    audience: Audience,
) -> None:
    for applicant in (denied_applicant, approved_applicant):
        facts = facts_for(registry, model_id, applicant, audience)
        assert facts.plan is not None
        text = deterministic_explanation(facts)
        verdict = verify(facts, text)
        assert verdict.passed, (text, verdict.violations)
        if audience is Audience.APPLICANT:
            assert verdict.coverage == pytest.approx(1.0)
        named = set(verdict.mentioned)
        for planned in facts.plan.factors:
            in_reason = any(planned.feature in r.features for r in facts.reasons)
            assert planned.feature in named or in_reason, (planned.feature, text)
        assert "could make a difference" not in text
        if facts.prediction.adverse and facts.plan.recourse and facts.plan.recourse.counterfactuals:
            assert verdict.counterfactuals == facts.plan.recourse.counterfactuals[:1]


def test_magnitude_words_must_fit_the_share(denied: DecisionFacts) -> None:
    total = sum(abs(i.contribution) for i in denied.attributions.items)
    shares = {name: abs(f.contribution) / total for name, f in denied.factors.items()}
    assert shares["duration_months"] >= 0.20
    passes(denied, "The length of the loan term raised the risk strongly.")
    slight = "The length of the loan term raised the risk slightly."
    assert ViolationKind.WRONG_CONTEXT in violation_kinds(denied, slight)
    small = min(
        (name for name in shares if not denied.manifest.feature(name).protected),
        key=lambda name: shares[name],
    )
    description = denied.manifest.feature(small).description
    direction = "raised" if denied.factors[small].raises_risk else "lowered"
    passes(denied, f"The {description} {direction} the risk slightly.")
    strong = f"The {description} {direction} the risk heavily."
    assert ViolationKind.WRONG_CONTEXT in violation_kinds(denied, strong)


def test_a_number_that_is_not_the_factors_own_fails_closed(denied: DecisionFacts) -> None:
    term = denied.factors["duration_months"]
    checking = denied.factors["checking_account"]
    own = f"The length of the loan term (48 months) raised the risk by {term.contribution:.3f}."
    passes(denied, own)
    total = sum(abs(i.contribution) for i in denied.attributions.items)
    passes(
        denied,
        f"The length of the loan term accounted for {abs(term.contribution) / total:.0%} "
        "of the total push.",
    )
    # Another factor's magnitude, true of the decision but not of this factor.
    borrowed = f"Your checking account raised the risk by {term.contribution:.3f}."
    assert abs(term.contribution - checking.contribution) > 0.01
    assert ViolationKind.UNVERIFIABLE in violation_kinds(denied, borrowed)


def test_a_quoted_typical_value_neither_hides_a_wrong_value_nor_names_another_feature(
    denied: DecisionFacts, registry: ModelRegistry, approved_applicant: dict[str, Any]
) -> None:
    assert denied.plan is not None
    checking = denied.plan.factor("checking_account")
    assert checking is not None and checking.typical_favourable == "no_account"
    # The typical value stated as the applicant's own is a wrong value, not a quotation.
    wrong = "You had no checking account, which raised the risk."
    assert ViolationKind.WRONG_VALUE in violation_kinds(denied, wrong)
    # "existing credits paid back on time so far", quoted as a typical credit history,
    # does not name the feature existing_credits.
    analyst = facts_for(registry, GBM, approved_applicant, Audience.ANALYST)
    assert analyst.plan is not None
    history = analyst.plan.factor("credit_history")
    assert history is not None and history.typical_favourable == "existing_paid_duly"
    text = deterministic_explanation(analyst)
    assert "the typical value was existing credits paid back on time so far" in text
    verdict = verify(analyst, text)
    assert verdict.passed, verdict.violations
    assert "existing_credits" not in verdict.mentioned
