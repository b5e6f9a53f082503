"""Prediction and principal reasons: the deterministic, legally operative part.

Principal reasons (adverse-action reason codes) are the manifest's reason groups whose net
contribution (every unprotected member, whichever way it pushed) points toward the adverse
outcome, largest first, at most four. Which way is adverse follows the decision rule: a
higher raw output for ``score_at_or_above``, a lower one for ``score_below``. A protected
feature is never a reason, nor counted inside a group. Favourable decisions get no adverse
reasons.
"""

from __future__ import annotations

from expound.domain import Attributions, FeatureAttribution, Prediction, PrincipalReason
from expound.models.manifest import ModelManifest
from expound.models.scoring import score_of

MAX_PRINCIPAL_REASONS = 4


def predict(manifest: ModelManifest, model_output: float) -> Prediction:
    """The score (the probability the manifest's ``score`` names) and its decision."""
    score = score_of(manifest.score.space, model_output)
    rule = manifest.decision
    adverse = rule.is_adverse(score)
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
    sign = manifest.decision.adverse_sign
    # Contributions toward the adverse outcome.
    toward = {item.feature: sign * item.contribution for item in attributions.items}
    scored: list[tuple[float, int, list[str]]] = []
    for index, entry in enumerate(manifest.reasons):
        members = [name for name in entry.features if name not in protected]
        net = sum(toward[name] for name in members)
        if net > 0:
            adverse_features = sorted(
                (name for name in members if toward[name] > 0), key=lambda name: -toward[name]
            )
            scored.append((net, index, adverse_features))
    scored.sort(key=lambda item: (-item[0], item[1]))
    reasons: list[PrincipalReason] = []
    for rank, (total, index, features) in enumerate(scored[:MAX_PRINCIPAL_REASONS], start=1):
        entry = manifest.reasons[index]
        reasons.append(
            PrincipalReason(
                rank=rank,
                code=entry.code,
                text=entry.text,
                # Both wordings go into the answer and the record, so a reader of either sees
                # the wording meant for them without the model's reason table.
                neutral_text=entry.third_person,
                features=features,
                contribution=sign * total,
            )
        )
    return reasons


def favourable_factors(
    manifest: ModelManifest, attributions: Attributions, limit: int = 3
) -> list[FeatureAttribution]:
    """The unprotected features that pushed hardest toward the favourable outcome."""
    protected = {spec.name for spec in manifest.features if spec.protected}
    sign = manifest.decision.adverse_sign
    helping = [
        item
        for item in attributions.items
        if sign * item.contribution < 0 and item.feature not in protected
    ]
    return helping[:limit]
