"""The content plan: what an explanation of one decision says, in which order, computed from
the facts before any text is written.

A plan is data, not text: an ordered list of factors ("moves"), each with its role, its
direction, its share of the total push in words bound to ranges, and its value in context
(percentile in the reference sample, the typical value among favourable decisions); the
base rate of the reference sample; the attribution method's exactness; and, for adverse
decisions, the verified counterfactuals. Generators follow it, the gate checks texts
against it, and it is archived with the decision.

- Analyst and compliance: the top factors by |contribution| in both directions, in that
  order, protected features excluded.
- Applicant: the principal reasons' leading features (adverse) or the main favourable
  factors (approval), then the largest factor that pushed the other way when it is among
  the top factors by |contribution| (a borderline case must not read as one-sided).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from expound.domain import Attributions, Audience, FeatureScalar, Prediction, PrincipalReason
from expound.explainers.decision import Decision
from expound.explainers.reasons import favourable_factors
from expound.explainers.recourse import Recourse, search_recourse
from expound.explainers.reference import ReferenceSample, reference_sample
from expound.models.manifest import FeatureSpec, ModelManifest
from expound.models.registry import LoadedModel

PLAN_FACTORS = 4
MAX_APPLICANT_LEADS = 3
# A factor's share of the total push (sum of |contribution| over all features), in words:
# [low, high) -> phrase. Shares under the first bound are not put in words. The gate reads
# these phrases back, so this table is the one place they are defined.
SHARE_WORDS: tuple[tuple[float, float, str], ...] = (
    (0.10, 0.20, "a modest part"),
    (0.20, 0.28, "about a quarter"),
    (0.28, 0.40, "about a third"),
    (0.40, 0.60, "about half"),
    (0.60, 0.80, "most"),
    (0.80, 1.01, "nearly all"),
)
# Magnitude words a text may use of one factor, with the range of shares each needs: a
# "slight" effect is under 15% of the total push, a "strong" one at least 20%.
MAGNITUDE_WORDS: tuple[tuple[tuple[str, ...], float, float], ...] = (
    (("slightly", "marginally", "a little", "somewhat", "a small effect"), 0.0, 0.15),
    (
        (
            "strongly",
            "heavily",
            "substantially",
            "greatly",
            "considerably",
            "sharply",
            "a large effect",
            "a strong effect",
        ),
        0.20,
        1.01,
    ),
)
# Algorithms whose attributions are exact SHAP values (the others are estimates).
EXACT_ALGORITHMS = ("treeshap-", "linear-shap-")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlannedFactor(_Frozen):
    """One move of the plan: a factor, why it is there, and its context."""

    feature: str
    role: Literal["principal", "counterweight"]
    direction: Literal["adverse", "favourable"]
    contribution: float
    rank: int
    share: float
    share_words: str | None
    value: FeatureScalar
    percentile: int | None = None
    typical_favourable: FeatureScalar = None


class ReferenceRecord(_Frozen):
    """Which reference sample the context comes from, and its base rate."""

    sample: str
    sha256: str
    rows: int
    favourable_share: float
    mean_score: float


class ContentPlan(_Frozen):
    """What an explanation of one decision says, in order."""

    version: str = "plan/v1"
    audience: Audience
    factors: list[PlannedFactor]
    attribution_method: Literal["exact", "estimated"]
    reference: ReferenceRecord | None = None
    recourse: Recourse | None = None

    def factor(self, feature: str) -> PlannedFactor | None:
        """The planned factor of ``feature`` (None: not in the plan)."""
        return next((f for f in self.factors if f.feature == feature), None)


def share_words(share: float) -> str | None:
    """The words for a share of the total push (None below the smallest range)."""
    return next((words for low, high, words in SHARE_WORDS if low <= share < high), None)


def share_range(words: str) -> tuple[float, float]:
    """The range of shares a phrase of :data:`SHARE_WORDS` stands for."""
    return next((low, high) for low, high, w in SHARE_WORDS if w == words)


def attribution_method(algorithm: str) -> Literal["exact", "estimated"]:
    """Whether an algorithm's attributions are exact SHAP values or estimates."""
    return "exact" if algorithm.startswith(EXACT_ALGORITHMS) else "estimated"


def _unprotected(manifest: ModelManifest, attributions: Attributions) -> list[str]:
    protected = {spec.name for spec in manifest.features if spec.protected}
    ordered = sorted(attributions.items, key=lambda item: item.rank)
    return [item.feature for item in ordered if item.feature not in protected]


def _selected(
    manifest: ModelManifest,
    attributions: Attributions,
    prediction: Prediction,
    reasons: list[PrincipalReason],
    audience: Audience,
) -> list[tuple[str, Literal["principal", "counterweight"]]]:
    top = _unprotected(manifest, attributions)[:PLAN_FACTORS]
    if audience is not Audience.APPLICANT:
        return [(name, "principal") for name in top]
    if prediction.adverse:
        leads = list(dict.fromkeys(r.features[0] for r in reasons if r.features))
    else:
        leads = [item.feature for item in favourable_factors(manifest, attributions)]
    leads = leads[:MAX_APPLICANT_LEADS]
    sign = manifest.decision.adverse_sign
    contribution = {item.feature: item.contribution for item in attributions.items}
    other_way = [name for name in top if (sign * contribution[name] > 0) != prediction.adverse]
    chosen: list[tuple[str, Literal["principal", "counterweight"]]] = [
        (name, "principal") for name in leads
    ]
    if other_way and other_way[0] not in leads:
        chosen.append((other_way[0], "counterweight"))
    return chosen


def _context(
    spec: FeatureSpec, value: FeatureScalar, reference: ReferenceSample | None
) -> tuple[int | None, FeatureScalar]:
    """(percentile, typical value among favourable decisions) where they read well."""
    if reference is None or value is None or spec.name not in reference.features:
        return None, None
    sample = reference.features[spec.name]
    if spec.type in ("number", "integer") and isinstance(value, (int, float)):
        # A percentile of a 1-4 band says little (and of a labelled code, whose order may
        # run against its label's, it misleads); a term or an amount it places.
        banded = spec.unit == "band" or bool(spec.value_labels)
        percentile = None if banded else sample.percentile(float(value))
        return percentile, sample.typical_favourable(spec)
    if spec.type == "category":
        return None, sample.typical_favourable(spec)
    return None, None


def content_plan(
    manifest: ModelManifest,
    prediction: Prediction,
    attributions: Attributions,
    reasons: list[PrincipalReason],
    audience: Audience,
    reference: ReferenceSample | None = None,
    recourse: Recourse | None = None,
) -> ContentPlan:
    """Plans the explanation of one decision for one audience (a pure function of the
    facts, the reference sample and the recourse search)."""
    total = sum(abs(item.contribution) for item in attributions.items)
    by_name = {item.feature: item for item in attributions.items}
    sign = manifest.decision.adverse_sign
    factors = []
    for name, role in _selected(manifest, attributions, prediction, reasons, audience):
        item = by_name[name]
        share = round(abs(item.contribution) / total, 4) if total > 0 else 0.0
        percentile, typical = _context(manifest.feature(name), item.value, reference)
        factors.append(
            PlannedFactor(
                feature=name,
                role=role,
                direction="adverse" if sign * item.contribution > 0 else "favourable",
                contribution=item.contribution,
                rank=item.rank,
                share=share,
                share_words=share_words(share),
                value=item.value,
                percentile=percentile,
                typical_favourable=typical,
            )
        )
    return ContentPlan(
        audience=audience,
        factors=factors,
        attribution_method=attribution_method(attributions.algorithm),
        reference=None
        if reference is None
        else ReferenceRecord(
            sample=reference.name,
            sha256=reference.sha256,
            rows=reference.rows,
            favourable_share=round(reference.base_rate, 4),
            mean_score=round(reference.mean_score, 4),
        ),
        recourse=recourse if prediction.adverse else None,
    )


def plan_decision(
    model: LoadedModel,
    features: dict[str, FeatureScalar],
    decision: Decision,
    audience: Audience,
) -> ContentPlan:
    """The plan stage: the reference sample's context and, for an adverse decision, the
    recourse search, then :func:`content_plan`. Sync and CPU-bound (the model scores the
    recourse grid): the pipeline runs it off the event loop."""
    prediction = decision.prediction
    recourse = search_recourse(model, features) if prediction.adverse else None
    return content_plan(
        model.manifest,
        prediction,
        decision.attributions,
        decision.principal_reasons,
        audience,
        reference_sample(model),
        recourse,
    )
