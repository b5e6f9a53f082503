"""The deterministic explanation, written from the decision, reasons and attributions.

It is the explanation of record whenever no drafted candidate is usable, so it states
only what the numbers say, in words fitted to the audience.
"""

from __future__ import annotations

from expound.domain import Attributions, Audience, FeatureScalar, Prediction, PrincipalReason
from expound.explainers.facts import value_text as describe_value
from expound.explainers.reasons import favourable_factors
from expound.models.manifest import ModelManifest

GENERATOR_ID = "deterministic/v1"


def _reason_clause(
    manifest: ModelManifest, reason: PrincipalReason, values: dict[str, FeatureScalar]
) -> str:
    specs = [manifest.feature(name) for name in reason.features]
    details = ", ".join(
        f"{spec.description}: {describe_value(spec, values[spec.name])}" for spec in specs
    )
    return f"{reason.text} ({details})"


def deterministic_explanation(
    manifest: ModelManifest,
    prediction: Prediction,
    attributions: Attributions,
    reasons: list[PrincipalReason],
    audience: Audience,
) -> str:
    """Writes the explanation of one decision for one audience."""
    values = {item.feature: item.value for item in attributions.items}
    if audience is Audience.ANALYST:
        # Protected attributes stay in the attribution table, never in the narrative.
        unprotected = [i for i in attributions.items if not manifest.feature(i.feature).protected]
        top = "; ".join(
            f"{item.feature}={describe_value(manifest.feature(item.feature), item.value)} "
            f"{item.contribution:+.3f}"
            for item in unprotected[:5]
        )
        return (
            f"Decision: {prediction.decision} (score {prediction.score:.3f}, threshold "
            f"{prediction.threshold:.2f}; {prediction.score_meaning}). Base value "
            f"{attributions.base_value:+.3f}, model output {attributions.model_output:+.3f} "
            f"{attributions.units}. Contributions by size: {top}."
        )
    if audience is Audience.COMPLIANCE:
        if not reasons:
            return (
                f"Decision: {prediction.decision}. No adverse action; no principal reasons apply."
            )
        listed = "; ".join(f"{r.rank}. {r.code}: {r.text}" for r in reasons)
        return f"Adverse action: {prediction.decision}. Principal reasons, in order: {listed}."
    if prediction.adverse:
        clauses = [_reason_clause(manifest, r, values) for r in reasons]
        text = "Your application was declined. The main reasons, most important first: "
        text += "; ".join(f"{i}. {c}" for i, c in enumerate(clauses, start=1)) + "."
        actionable = [
            manifest.feature(name).description
            for r in reasons
            for name in r.features
            if manifest.feature(name).actionable
        ]
        if actionable:
            text += " What you could change: " + ", ".join(actionable[:3]) + "."
        return text
    helping = favourable_factors(manifest, attributions)
    text = "Your application was approved."
    if helping:
        listed = "; ".join(
            f"{manifest.feature(item.feature).description}: "
            f"{describe_value(manifest.feature(item.feature), item.value)}"
            for item in helping
        )
        text += f" The factors that helped most: {listed}."
    return text
