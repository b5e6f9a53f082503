"""The facts of one decision: what drafting may say and what verification checks against.

Built only from structured outputs (prediction, attributions, principal reasons, the
manifest's descriptions), never from free text; the question is carried as data.
"""

from __future__ import annotations

from dataclasses import dataclass

from expound.domain import Attributions, Audience, Prediction, PrincipalReason
from expound.explainers.decision import Decision
from expound.explainers.plan import ContentPlan
from expound.explainers.reasons import favourable_factors
from expound.models.manifest import FeatureSpec, ModelManifest

TOP_FACTORS = 4


@dataclass(frozen=True)
class Factor:
    """One feature's part in the decision."""

    feature: str
    description: str
    value_text: str
    number: float | None
    contribution: float
    rank: int  # by |contribution| among all features, 1 = largest
    importance: int | None  # position among the decision's reasons (or helping factors)
    adverse_sign: float = 1.0  # the decision rule's: -1 when a lower score is adverse

    @property
    def raises_risk(self) -> bool:
        """True when it pushed toward the adverse outcome."""
        return self.adverse_sign * self.contribution > 0


@dataclass(frozen=True)
class DecisionFacts:
    """Everything an explanation of one decision may state."""

    model_id: str
    manifest: ModelManifest
    prediction: Prediction
    attributions: Attributions
    reasons: list[PrincipalReason]
    audience: Audience
    question: str
    factors: dict[str, Factor]
    plan: ContentPlan | None = None

    def reason_text(self, reason: PrincipalReason) -> str:
        """A principal reason as this audience's text states it: to the applicant as the
        notice does ("your checking account"), to compliance and analysts in the third
        person ("the applicant's checking account")."""
        if self.audience is Audience.APPLICANT:
            return reason.text
        return reason.third_person

    def reason_wordings(self, reason: PrincipalReason) -> list[str]:
        """Every wording a text may state ``reason`` in (the applicant's, the third
        person's), longest first."""
        return sorted({reason.text, reason.third_person}, key=len, reverse=True)

    @property
    def ordered(self) -> list[Factor]:
        """Factors that carry the decision, most important first: the principal reasons'
        features for a denial, the helping factors for an approval."""
        ranked = [f for f in self.factors.values() if f.importance is not None]
        return sorted(ranked, key=lambda f: (f.importance or 0, f.rank))

    @property
    def top(self) -> list[Factor]:
        """The top attributions by |contribution| (protected features excluded)."""
        return sorted(
            (f for f in self.factors.values() if not self.manifest.feature(f.feature).protected),
            key=lambda f: f.rank,
        )[:TOP_FACTORS]


def value_text(spec: FeatureSpec, value: float | str | bool | None) -> str:
    """A feature value in words, e.g. "48 months", "overdrawn (balance below 0 DM)" or,
    for a banded code with a reviewed label, "under 20%" (never the bare code)."""
    if value is None:
        return "not provided"
    if spec.type == "category":
        return spec.category_wording(str(value))
    if spec.type == "bool":
        return "yes" if value else "no"
    label = spec.value_label(value)
    if label is not None:
        return label
    number = float(value)
    shown = f"{number:,.0f}" if number.is_integer() else f"{number:,.2f}"
    if not spec.unit or spec.unit == "band":
        return shown
    # "1 credit", "1 person", not "1 credits", "1 people".
    unit = _singular(spec.unit) if number == 1 else spec.unit
    return f"{shown} {unit}"


# Units whose singular is not the plural less its "s".
IRREGULAR_SINGULARS = {"people": "person", "children": "child"}


def _singular(unit: str) -> str:
    if unit in IRREGULAR_SINGULARS:
        return IRREGULAR_SINGULARS[unit]
    return unit[:-1] if unit.endswith("s") and not unit.endswith("ss") else unit


def decision_facts(
    manifest: ModelManifest,
    decision: Decision,
    audience: Audience,
    question: str,
    plan: ContentPlan | None = None,
) -> DecisionFacts:
    """Collects the facts of one decision.

    Importance follows the plan for analysts (the top factors of both directions, by
    |contribution|), the principal reasons for adverse decisions otherwise, and the
    favourable factors for approvals.
    """
    prediction, attributions = decision.prediction, decision.attributions
    reasons = decision.principal_reasons
    importance: dict[str, int] = {}
    if plan is not None and audience is Audience.ANALYST:
        for position, planned in enumerate(plan.factors, start=1):
            importance[planned.feature] = position
    elif prediction.adverse:
        for reason in reasons:
            for name in reason.features:
                importance.setdefault(name, reason.rank)
    else:
        for position, item in enumerate(favourable_factors(manifest, attributions), start=1):
            importance[item.feature] = position
    factors = {}
    for item in attributions.items:
        spec = manifest.feature(item.feature)
        number = (
            float(item.value)
            if spec.type in ("number", "integer") and isinstance(item.value, (int, float))
            else None
        )
        factors[item.feature] = Factor(
            feature=item.feature,
            description=spec.description,
            value_text=value_text(spec, item.value),
            number=number,
            contribution=item.contribution,
            rank=item.rank,
            importance=importance.get(item.feature),
            adverse_sign=manifest.decision.adverse_sign,
        )
    return DecisionFacts(
        model_id=manifest.model_id,
        manifest=manifest,
        prediction=prediction,
        attributions=attributions,
        reasons=reasons,
        audience=audience,
        question=question,
        factors=factors,
        plan=plan,
    )
