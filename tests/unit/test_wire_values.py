"""Feature values filled in place write the same messages, byte for byte, as built ones."""

from __future__ import annotations

from typing import Any

import pytest

from expound.domain import Audience, FeatureScalar
from expound.explainers.decision import decide
from expound.explainers.plan import ContentPlan, plan_decision
from expound.models.registry import ModelRegistry
from expound.server import convert
from expound.v1 import explain_pb2 as pb
from expound.wire import feature_to_pb, fill_feature_pb
from tests.conftest import GBM, LOGISTIC

VALUES: list[FeatureScalar] = [None, True, False, 0.0, -0.0, 3, 2.5, "", "overdrawn"]


def _built(value: FeatureScalar) -> pb.FeatureValue:
    """A feature value as the wire wrote it before values were filled in place."""
    if value is None:
        return pb.FeatureValue(null="NULL_VALUE")
    if isinstance(value, bool):
        return pb.FeatureValue(bool=value)
    if isinstance(value, (int, float)):
        return pb.FeatureValue(number=float(value))
    return pb.FeatureValue(string=value)


@pytest.mark.parametrize("value", VALUES)
def test_a_value_filled_in_place_is_the_value_built(value: FeatureScalar) -> None:
    built = pb.Attribution(feature="f", value=_built(value))
    filled = pb.Attribution(feature="f")
    fill_feature_pb(filled.value, value)
    assert filled.HasField("value")
    assert filled.value.WhichOneof("kind") == built.value.WhichOneof("kind") is not None
    assert filled.SerializeToString(deterministic=True) == built.SerializeToString(
        deterministic=True
    )
    assert feature_to_pb(value) == _built(value)


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_attributions_and_plans_convert_as_they_did_item_by_item(
    registry: ModelRegistry,
    model_id: str,
    denied_applicant: dict[str, Any],
    approved_applicant: dict[str, Any],
) -> None:
    model = registry.get(model_id)
    for applicant in (denied_applicant, approved_applicant):
        decision = decide(model, applicant, 1e-6)
        for audience in Audience:
            plan = plan_decision(model, applicant, decision, audience)
            assert convert.plan_to_pb(plan) == _plan_built(plan)
        attributions = decision.attributions
        expected = pb.Attributions(
            items=[
                pb.Attribution(
                    feature=item.feature,
                    description=item.description,
                    value=_built(item.value),
                    contribution=item.contribution,
                    rank=item.rank,
                )
                for item in attributions.items
            ],
            base_value=attributions.base_value,
            model_output=attributions.model_output,
            units=attributions.units,
            algorithm=attributions.algorithm,
            library_version=attributions.library_version,
            background_sha256=attributions.background_sha256,
            seed=attributions.sampling_seed,
            additivity_residual=attributions.additivity_residual,
        )
        assert convert._attributions_to_pb(attributions) == expected
        assert len(expected.items) == len(model.manifest.features)


def _plan_built(plan: ContentPlan) -> pb.ContentPlan:
    message = pb.ContentPlan(
        version=plan.version,
        factors=[
            pb.PlannedFactor(
                feature=f.feature,
                role=f.role,
                direction=f.direction,
                contribution=f.contribution,
                rank=f.rank,
                share=f.share,
                share_words=f.share_words or "",
                value=_built(f.value),
                percentile=f.percentile,
                typical_favourable=_built(f.typical_favourable),
            )
            for f in plan.factors
        ],
        attribution_method=plan.attribution_method,
    )
    if plan.reference is not None:
        message.reference.CopyFrom(convert.plan_to_pb(plan).reference)
    if plan.recourse is not None:
        message.recourse.CopyFrom(convert._recourse_to_pb(plan.recourse))
    return message
