"""Prediction and principal reasons: the deterministic, legally operative part.

Principal reasons (adverse-action reason codes) are the manifest's reason groups whose
summed contribution pushes toward the adverse outcome, largest first, at most four. A
protected feature is never a reason, nor counted inside a group. Favourable decisions get
no adverse reasons.
"""

from __future__ import annotations

from expound.domain import Attributions, FeatureAttribution, Prediction, PrincipalReason
from expound.models.manifest import ModelManifest
from expound.models.scoring import sigmoid

MAX_PRINCIPAL_REASONS = 4


def predict(manifest: ModelManifest, model_output: float) -> Prediction:
    """The score (a probability of the adverse event) and the decision it implies."""
    score = sigmoid(model_output)
    rule = manifest.decision
    adverse = score >= rule.threshold
    return Prediction(
        score=score,
        score_meaning=manifest.score_meaning,
        threshold=rule.threshold,
        decision=rule.adverse_label if adverse else rule.favourable_label,
        adverse=adverse,
    )


def principal_reasons(
    manifest: ModelManifest, attributions: Attributions, prediction: Prediction
) -> list[PrincipalReason]:
    """The ordered adverse-action reasons for a decision (empty for approvals)."""
    if not prediction.adverse:
        return []
    protected = {spec.name for spec in manifest.features if spec.protected}
    contribution = {item.feature: item.contribution for item in attributions.items}
    scored: list[tuple[float, int, list[str]]] = []
    for index, entry in enumerate(manifest.reasons):
        adverse_features = [
            name for name in entry.features if name not in protected and contribution[name] > 0
        ]
        total = sum(contribution[name] for name in adverse_features)
        if total > 0:
            adverse_features.sort(key=lambda name: -contribution[name])
            scored.append((total, index, adverse_features))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [
        PrincipalReason(
            rank=rank,
            code=manifest.reasons[index].code,
            text=manifest.reasons[index].text,
            features=features,
            contribution=total,
        )
        for rank, (total, index, features) in enumerate(scored[:MAX_PRINCIPAL_REASONS], start=1)
    ]


def favourable_factors(
    manifest: ModelManifest, attributions: Attributions, limit: int = 3
) -> list[FeatureAttribution]:
    """The unprotected features that pushed hardest toward the favourable outcome."""
    protected = {spec.name for spec in manifest.features if spec.protected}
    helping = [
        item
        for item in attributions.items
        if item.contribution < 0 and item.feature not in protected
    ]
    return helping[:limit]
