"""Principal reasons: deterministic, adverse-only, never protected, at most four, ordered."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expound.domain import Attributions, FeatureAttribution, Prediction
from expound.explainers.algorithms import build_explainer
from expound.explainers.base import attribute
from expound.explainers.reasons import MAX_PRINCIPAL_REASONS, predict, principal_reasons
from expound.models.manifest import FeatureSpec, ModelManifest
from expound.models.registry import ModelRegistry
from tests.conftest import GBM, LOGISTIC


def applicant_strategy(manifest: ModelManifest) -> st.SearchStrategy[dict[str, Any]]:
    """Random valid applicants for a model's schema."""

    def value(spec: FeatureSpec) -> st.SearchStrategy[Any]:
        if spec.type == "category":
            return st.sampled_from(spec.categories or [])
        if spec.type == "bool":
            return st.booleans()
        low, high = spec.minimum or 0, spec.maximum or 1e6
        if spec.type == "integer":
            return st.integers(int(low), int(high))
        return st.floats(low, high, allow_nan=False)

    return st.fixed_dictionaries({spec.name: value(spec) for spec in manifest.features})


def _check_reasons(registry: ModelRegistry, model_id: str, applicant: dict[str, Any]) -> None:
    model = registry.get(model_id)
    manifest = model.manifest
    attributions = attribute(model, build_explainer(model), applicant, tolerance=1e-6)
    prediction = predict(manifest, attributions.model_output)
    reasons = principal_reasons(manifest, attributions, prediction)
    assert reasons == principal_reasons(manifest, attributions, prediction)
    if not prediction.adverse:
        assert reasons == []
        return
    assert 1 <= len(reasons) <= MAX_PRINCIPAL_REASONS
    protected = {s.name for s in manifest.features if s.protected}
    contribution = {i.feature: i.contribution for i in attributions.items}
    codes = {r.code: r for r in manifest.reasons}
    for reason in reasons:
        assert not protected & set(reason.features)
        assert all(contribution[f] > 0 for f in reason.features)
        entry = codes[reason.code]
        members = [f for f in entry.features if f not in protected]
        # A group's contribution is its NET effect: every unprotected member, either sign.
        assert reason.contribution == pytest.approx(sum(contribution[f] for f in members))
        assert set(reason.features) == {f for f in members if contribution[f] > 0}
        assert reason.text == codes[reason.code].text
    totals = [r.contribution for r in reasons]
    assert totals == sorted(totals, reverse=True)
    assert [r.rank for r in reasons] == list(range(1, len(reasons) + 1))
    # No reason group left out pushes harder toward the adverse outcome than the last one.
    chosen = {r.code for r in reasons}
    for entry in manifest.reasons:
        if entry.code in chosen:
            continue
        left_out = sum(contribution[f] for f in entry.features if f not in protected)
        if len(reasons) == MAX_PRINCIPAL_REASONS:
            assert left_out <= totals[-1] + 1e-12
        else:
            assert left_out <= 0


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_reason_properties_over_random_applicants(registry: ModelRegistry, model_id: str) -> None:
    manifest = registry.get(model_id).manifest

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(applicant_strategy(manifest))
    def check(applicant: dict[str, Any]) -> None:
        _check_reasons(registry, model_id, applicant)

    check()


def test_denied_example_gets_reasons_and_approved_gets_none(
    registry: ModelRegistry, denied_applicant: dict[str, Any], approved_applicant: dict[str, Any]
) -> None:
    for model_id in (GBM, LOGISTIC):
        model = registry.get(model_id)
        for applicant, adverse in ((denied_applicant, True), (approved_applicant, False)):
            attributions = attribute(model, build_explainer(model), applicant, tolerance=1e-6)
            prediction = predict(model.manifest, attributions.model_output)
            assert prediction.adverse is adverse, model_id
            reasons = principal_reasons(model.manifest, attributions, prediction)
            assert bool(reasons) is adverse


def _attributions(contributions: dict[str, float]) -> Attributions:
    items = [
        FeatureAttribution(feature=name, description=name, value=0.0, contribution=c, rank=rank)
        for rank, (name, c) in enumerate(
            sorted(contributions.items(), key=lambda kv: -abs(kv[1])), start=1
        )
    ]
    return Attributions(
        items=items,
        base_value=0.0,
        model_output=sum(contributions.values()),
        units="log-odds",
        algorithm="test",
        library_version="test",
        background_sha256="",
        sampling_seed=0,
        additivity_residual=0.0,
    )


def test_protected_feature_is_never_a_reason_even_when_it_dominates(
    registry: ModelRegistry,
) -> None:
    manifest = registry.get(GBM).manifest
    contributions = {spec.name: 0.0 for spec in manifest.features}
    contributions.update(
        age_years=5.0, duration_months=0.3, credit_amount=0.2, job=0.1, employment_since=0.05
    )
    attributions = _attributions(contributions)
    prediction = Prediction(
        score=0.9, score_meaning="", threshold=0.5, decision="decline", adverse=True
    )
    reasons = principal_reasons(manifest, attributions, prediction)
    assert [r.code for r in reasons] == ["TRM02", "AMT05", "EMP07"]
    assert reasons[2].features == ["job", "employment_since"]
    assert reasons[2].contribution == pytest.approx(0.15)


def test_a_reason_group_counts_its_net_effect_not_only_its_adverse_members(
    registry: ModelRegistry,
) -> None:
    manifest = registry.get(GBM).manifest
    contributions = {spec.name: 0.0 for spec in manifest.features}
    # EMP07 groups job and employment_since: +0.197 and -0.090 net to 0.107.
    contributions.update(job=0.197, employment_since=-0.090, duration_months=0.15)
    attributions = _attributions(contributions)
    prediction = Prediction(
        score=0.9, score_meaning="", threshold=0.5, decision="decline", adverse=True
    )
    reasons = principal_reasons(manifest, attributions, prediction)
    assert [r.code for r in reasons] == ["TRM02", "EMP07"]
    assert reasons[1].contribution == pytest.approx(0.107)
    assert reasons[1].features == ["job"]
