"""The deterministic explanation, written from the decision's facts and its content plan.

It is the explanation of record whenever no drafted candidate is usable, so it states
only what the numbers say, in words fitted to the audience, following the plan: the
factors of both directions in the plan's order, each with its share of the total push in
words and its value in context (percentile in the reference sample, typical value among
favourable decisions), the base rate, and, for adverse decisions, the verified
counterfactual the recourse search recorded (or, honestly, that none was found).
"""

from __future__ import annotations

from expound.domain import Audience, FeatureScalar, PrincipalReason
from expound.explainers.facts import DecisionFacts, value_text
from expound.explainers.plan import ContentPlan, PlannedFactor
from expound.explainers.recourse import Counterfactual
from expound.models.manifest import FeatureSpec
from expound.models.wording import parenthesis_free
from expound.rankers.routing import asked_factors, preferred_styles

GENERATOR_ID = "deterministic/v3"


def _reason_clause(facts: DecisionFacts, reason: PrincipalReason) -> str:
    """A reason with its values: the value alone where the reason has one feature (its
    text names it already), each feature named with its value where it has several ("Other
    credit obligations: other instalment plans (with a bank) and number of existing credits
    at this bank (2 credits)", not "(other instalment plans: with a bank, ...)")."""
    if len(reason.features) == 1:
        return f"{reason.text} ({parenthesis_free(facts.factors[reason.features[0]].value_text)})"
    named = [
        f"{facts.factors[name].description} ({parenthesis_free(facts.factors[name].value_text)})"
        for name in reason.features
    ]
    return f"{reason.text}: {', '.join(named[:-1])} and {named[-1]}"


def _direction(planned: PlannedFactor) -> str:
    return "raised the risk" if planned.direction == "adverse" else "lowered the risk"


def _typical(facts: DecisionFacts, planned: PlannedFactor) -> str | None:
    """The typical value among favourable decisions, when it differs from the applicant's."""
    if planned.typical_favourable is None:
        return None
    spec = facts.manifest.feature(planned.feature)
    typical = parenthesis_free(value_text(spec, planned.typical_favourable))
    return (
        None if typical == parenthesis_free(facts.factors[planned.feature].value_text) else typical
    )


def _percentile(planned: PlannedFactor) -> str | None:
    if planned.percentile is None:
        return None
    return f"at the {_ordinal(planned.percentile)} percentile of the reference sample"


def context_sentences(facts: DecisionFacts, planned: PlannedFactor) -> list[str]:
    """Sentences placing one factor's value in the reference sample and the whole push."""
    named = _named(facts, planned)
    placed = _percentile(planned)
    sentences = []
    if planned.share_words is not None:
        where = f", {placed}," if placed else ""
        sentences.append(f"{named}{where} accounted for {planned.share_words} of the total push.")
    elif placed:
        sentences.append(f"{named} is {placed}.")
    typical = typical_sentence(facts, planned)
    if typical is not None:
        sentences.append(typical)
    return sentences


def percentile_sentence(facts: DecisionFacts, planned: PlannedFactor) -> str | None:
    """Where the applicant's value of one factor lies in the reference sample."""
    placed = _percentile(planned)
    if placed is None:
        return None
    return f"{_named(facts, planned)} is {placed}."


def _named(facts: DecisionFacts, planned: PlannedFactor) -> str:
    """A factor as the subject of a context sentence, written as the texts write it
    elsewhere: "The amount of credit requested (2,353 DM)", not "... of 2,353 DM"."""
    factor = facts.factors[planned.feature]
    return f"The {factor.description} ({parenthesis_free(factor.value_text)})"


def typical_sentence(facts: DecisionFacts, planned: PlannedFactor) -> str | None:
    """The typical value of one factor among favourable decisions, when it differs."""
    typical = _typical(facts, planned)
    if typical is None:
        return None
    description = facts.factors[planned.feature].description
    return (
        f"Among favourable decisions in the reference sample, the typical {description} "
        f"is {typical}."
    )


def context_inline(facts: DecisionFacts, planned: PlannedFactor, placed_too: bool = True) -> str:
    """The same context as trailing phrases of the factor's own sentence (analysts); with
    ``placed_too`` False, the share of the push only (no percentile, no typical value)."""
    parts = []
    if planned.share_words is not None:
        parts.append(f"{planned.share_words} of the total push")
    if not placed_too:
        return "".join(f", {part}" for part in parts)
    placed = _percentile(planned)
    if placed is not None:
        parts.append(placed)
    inline = "".join(f", {part}" for part in parts)
    typical = _typical(facts, planned)
    if typical is None:
        return inline
    spec = facts.manifest.feature(planned.feature)
    if spec.type in ("number", "integer") and spec.value_label(planned.typical_favourable) is None:
        # "compared with a typical 18 months": a quantity reads as one ("against" would
        # read as a direction).
        return f"{inline}, compared with a typical {typical} among favourable decisions"
    # A category or a band's label is no quantity: "typically radio tv" read as a dump.
    return f"{inline} (among favourable decisions the typical value was {typical})"


def _ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def _change(spec: FeatureSpec, after: FeatureScalar, before: FeatureScalar) -> str:
    """One change of a counterfactual: "the length of the loan term at 30 months instead of
    36 months"; a band's label that reads as a preposition of its own takes no "at" ("the
    instalment as a share of disposable income under 20% instead of 35% or more")."""
    new, old = (parenthesis_free(value_text(spec, v)) for v in (after, before))
    at = "" if spec.value_label(after) is not None and not new[0].isdigit() else "at "
    return f"the {spec.description} {at}{new} instead of {old}"


def counterfactual_sentence(facts: DecisionFacts, counterfactual: Counterfactual) -> str:
    """States one recorded, re-scored counterfactual (the gate checks it against the record)."""
    manifest = facts.manifest
    changes = " and ".join(
        _change(manifest.feature(c.feature), c.after, c.before) for c in counterfactual.changes
    )
    rule = manifest.decision
    below = rule.adverse_when == "score_at_or_above"
    # Enough digits that the score reads on its side of the threshold: 0.4997 is not
    # "0.500, below the 0.50 threshold".
    digits = next(
        (
            d
            for d in (3, 4, 5, 6)
            if (round(counterfactual.score, d) < rule.threshold)
            == below
            == (counterfactual.score < rule.threshold)
        ),
        6,
    )
    side = "below" if below else "at or above"
    return (
        f"With {changes}, the score would have been {counterfactual.score:.{digits}f}, {side} "
        f"the {rule.threshold:.2f} threshold."
    )


NO_RECOURSE = (
    "No change of one or two of the factors you can act on would have changed the decision "
    "on its own."
)
# The same for analysts and compliance officers, who read of the applicant, not to them.
NO_RECOURSE_NEUTRAL = NO_RECOURSE.replace("you can act on", "the applicant can act on")


def no_recourse(audience: Audience) -> str:
    """The honest "no small change flips it", in the audience's voice."""
    return NO_RECOURSE if audience is Audience.APPLICANT else NO_RECOURSE_NEUTRAL


def _recourse(facts: DecisionFacts, plan: ContentPlan) -> list[str]:
    recourse = plan.recourse
    if recourse is None or not recourse.searched_features:
        return []
    if not recourse.counterfactuals:
        # "None" only of a search that tried every declared change.
        return [no_recourse(facts.audience)] if recourse.exhaustive else []
    return [counterfactual_sentence(facts, recourse.counterfactuals[0])]


def base_rate_sentences(plan: ContentPlan) -> list[str]:
    """The reference sample's base rate and mean score (none without a sample)."""
    if plan.reference is None:
        return []
    reference = plan.reference
    share = round(reference.favourable_share * 100)
    return [
        f"In the reference sample of {reference.rows} applications, {share}% of decisions "
        f"were favourable and the mean score was {reference.mean_score:.3f}."
    ]


def _method(facts: DecisionFacts) -> str:
    algorithm = facts.attributions.algorithm
    if facts.plan is not None and facts.plan.attribution_method == "exact":
        return f"Attributions are exact SHAP values ({algorithm})."
    return f"Attributions are estimated SHAP values ({algorithm})."


# The analyst's factors whose values are placed in the reference sample (percentile, typical).
ANALYST_PLACED = 2


def _analyst(facts: DecisionFacts, plan: ContentPlan) -> str:
    prediction, attributions = facts.prediction, facts.attributions
    sentences = [
        f"Decision: {prediction.decision} (score {prediction.score:.3f}, threshold "
        f"{prediction.threshold:.2f}; {prediction.score_meaning}).",
        f"Base value {attributions.base_value:+.3f}, model output "
        f"{attributions.model_output:+.3f} {attributions.units}.",
    ]
    for index, planned in enumerate(plan.factors):
        factor = facts.factors[planned.feature]
        # The value in context for the two largest factors, as the drafted texts give it:
        # for all four, the text runs past the analyst's 200 words.
        context = context_inline(facts, planned, placed_too=index < ANALYST_PLACED)
        sentences.append(
            f"{planned.feature} = {parenthesis_free(factor.value_text)} {_direction(planned)} "
            f"by {abs(planned.contribution):.3f}{context}."
        )
    return " ".join(
        [*sentences, *base_rate_sentences(plan), *_recourse(facts, plan), _method(facts)]
    )


# A list's verbs, taken in turn within each direction: "raised the risk" four times in
# one sentence reads as a form being filled in.
LIST_VERBS = {
    "adverse": ("raised the risk", "increased the risk", "added to the risk"),
    "favourable": ("lowered the risk", "reduced the risk", "decreased the risk"),
}


def _factor_list(facts: DecisionFacts, factors: list[PlannedFactor]) -> str:
    said = {"adverse": 0, "favourable": 0}
    items = []
    for p in factors:
        verbs = LIST_VERBS[p.direction]
        verb = verbs[said[p.direction] % len(verbs)]
        said[p.direction] += 1
        factor = facts.factors[p.feature]
        items.append(f"the {factor.description} ({parenthesis_free(factor.value_text)}) {verb}")
    return "; ".join(items)


def _compliance(facts: DecisionFacts, plan: ContentPlan) -> str:
    prediction = facts.prediction
    if len(facts.reasons) == 1:
        (reason,) = facts.reasons
        opening = (
            f"Adverse action: {prediction.decision}. The principal reason is {reason.code}: "
            f"{facts.reason_text(reason)}."
        )
    elif facts.reasons:
        listed = "; ".join(f"{r.rank}. {r.code}: {facts.reason_text(r)}" for r in facts.reasons)
        opening = f"Adverse action: {prediction.decision}. Principal reasons, in order: {listed}."
    else:
        opening = f"Decision: {prediction.decision}. No adverse action; no principal reasons apply."
    sentences = [opening]
    # A list opener only for a list: one factor is said as a sentence of its own.
    if len(plan.factors) == 1:
        single = _factor_list(facts, plan.factors)
        sentences.append(f"{single[0].upper()}{single[1:]}.")
    elif plan.factors:
        sentences.append(f"Factors by size of contribution: {_factor_list(facts, plan.factors)}.")
    return " ".join([*sentences, *_recourse(facts, plan), _method(facts)])


# An applicant's text aims at this many words at most; context sentences give way first.
APPLICANT_MAX_WORDS = 120


def _applicant(facts: DecisionFacts, plan: ContentPlan) -> str:
    leads = [p for p in plan.factors if p.role == "principal"]
    others = [p for p in plan.factors if p.role == "counterweight"]
    # The question's style, as the drafted candidates follow it: "what can I do" puts the
    # counterfactual right after the decision; a question naming a factor of the plan
    # gets that factor's context instead of the leading factor's.
    style = preferred_styles(facts)[0]
    asked = asked_factors(facts) if style == "question_first" else []
    recourse = _recourse(facts, plan)
    if facts.prediction.adverse:
        clauses = [_reason_clause(facts, r) for r in facts.reasons]
        if len(clauses) == 1:
            reasons = f"The main reason: {clauses[0][0].lower()}{clauses[0][1:]}."
        else:
            reasons = (
                "The main reasons, most important first: "
                + "; ".join(f"{i}. {c}" for i, c in enumerate(clauses, start=1))
                + "."
            )
        if style == "recourse_first" and recourse:
            sentences = ["Your application was declined.", *recourse, reasons]
            recourse = []
        else:
            sentences = [f"Your application was declined. {reasons}"]
    else:
        sentences = ["Your application was approved."]
        # "the amount of credit requested (2,353 DM)", as the drafted texts say it, not
        # "amount of credit requested: 2,353 DM" (a data dump).
        named = [
            f"the {facts.factors[p.feature].description} "
            f"({parenthesis_free(facts.factors[p.feature].value_text)})"
            for p in leads
        ]
        if len(named) == 1:
            sentences.append(f"What helped most was {named[0]}.")
        elif named:
            sentences.append(f"What helped, most important first: {'; '.join(named)}.")
    # Where each counterweight's sentence is: context for an asked one goes after it.
    said_at: dict[str, int] = {}
    for planned in others:
        said_at[planned.feature] = len(sentences) + 1
        factor = facts.factors[planned.feature]
        verb = (
            "counted in your favour" if planned.direction == "favourable" else "counted against you"
        )
        sentences.append(
            f"In the opposite direction, the {factor.description} "
            f"({parenthesis_free(factor.value_text)}) {verb}."
        )
    sentences += recourse
    # Context for one factor only (the asked one, else the leading one), and only while
    # the text stays short: the typical value goes first, then the share.
    placed = [p for p in plan.factors if p.feature in asked[:1]] or leads[:1]
    context = context_sentences(facts, placed[0]) if placed else []
    while context and len(" ".join([*sentences, *context]).split()) > APPLICANT_MAX_WORDS:
        context.pop()
    # After the sentence that names the factor: the reasons, or what helped (after the
    # counterfactual where it comes first), or the counterweight's own sentence.
    at = 1 if facts.prediction.adverse or not leads else 2
    if style == "recourse_first" and facts.prediction.adverse and len(sentences) > 2:
        at = 3
    if placed and placed[0].feature in said_at:
        at = said_at[placed[0].feature]
    return " ".join([*sentences[:at], *context, *sentences[at:]])


def deterministic_explanation(facts: DecisionFacts) -> str:
    """Writes the explanation of one decision for its audience, following its plan."""
    plan = facts.plan
    if plan is None:
        raise ValueError("the deterministic explanation follows a content plan; facts have none")
    if facts.audience is Audience.ANALYST:
        return _analyst(facts, plan)
    if facts.audience is Audience.COMPLIANCE:
        return _compliance(facts, plan)
    return _applicant(facts, plan)
