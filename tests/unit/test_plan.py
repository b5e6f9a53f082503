"""The content plan: which factors, in which order and direction, with which context."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from expound.domain import Audience, FeatureScalar
from expound.errors import ModelIntegrityError
from expound.explainers.algorithms import build_explainer
from expound.explainers.decision import decide
from expound.explainers.plan import SHARE_WORDS, content_plan, plan_decision, share_words
from expound.explainers.reference import FeatureReference, reference_sample
from expound.models.manifest import FeatureSpec
from expound.models.registry import ModelRegistry, load_model
from tests.conftest import GBM, LOGISTIC


def background_rows(registry: ModelRegistry, model_id: str) -> list[dict[str, Any]]:
    model = registry.get(model_id)
    rows: list[dict[str, Any]] = json.loads(
        (model.directory / model.manifest.background).read_text()
    )
    return rows


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
@pytest.mark.parametrize("audience", [Audience.ANALYST, Audience.COMPLIANCE])
def test_analyst_and_compliance_plans_are_the_top_factors_of_both_directions(
    registry: ModelRegistry, model_id: str, audience: Audience
) -> None:
    model = registry.get(model_id)
    both_ways = 0
    for row in background_rows(registry, model_id)[:30]:
        decision = decide(model, row, 1e-6)
        plan = plan_decision(model, row, decision, audience)
        unprotected = [
            item
            for item in sorted(decision.attributions.items, key=lambda i: i.rank)
            if not model.manifest.feature(item.feature).protected
        ]
        assert [p.feature for p in plan.factors] == [i.feature for i in unprotected[:4]]
        sign = model.manifest.decision.adverse_sign
        for planned, item in zip(plan.factors, unprotected, strict=False):
            expected = "adverse" if sign * item.contribution > 0 else "favourable"
            assert planned.direction == expected
        both_ways += len({p.direction for p in plan.factors}) == 2
    # The demo decisions are rarely one-sided: a plan that drops a direction shows here.
    assert both_ways >= 10


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_applicant_plans_add_the_largest_factor_that_pushed_the_other_way(
    registry: ModelRegistry, model_id: str
) -> None:
    model = registry.get(model_id)
    seen = 0
    for row in background_rows(registry, model_id)[:40]:
        decision = decide(model, row, 1e-6)
        plan = plan_decision(model, row, decision, Audience.APPLICANT)
        leads = [p for p in plan.factors if p.role == "principal"]
        others = [p for p in plan.factors if p.role == "counterweight"]
        outcome = "adverse" if decision.prediction.adverse else "favourable"
        assert all(p.direction == outcome for p in leads)
        top = plan_decision(model, row, decision, Audience.ANALYST).factors
        other_way = [p.feature for p in top if p.direction != outcome]
        if other_way and other_way[0] not in {p.feature for p in leads}:
            assert [p.feature for p in others] == other_way[:1]
            seen += 1
        else:
            assert others == []
    assert seen >= 5


def test_share_words_are_bound_to_their_ranges() -> None:
    for low, high, words in SHARE_WORDS:
        assert share_words(low) == words
        assert share_words(min(high, 1.0) - 1e-4) == words
    assert share_words(0.0999) is None
    assert share_words(0.28) == "about a third" and share_words(0.2799) == "about a quarter"


def test_percentile_is_the_mid_rank_in_the_sample() -> None:
    reference = FeatureReference(
        values=tuple(float(v) for v in range(1, 101)), favourable_values=()
    )
    assert reference.percentile(50.0) == 50  # 49 below, one equal: 49.5 -> 50
    assert reference.percentile(0.0) == 0 and reference.percentile(1000.0) == 100
    assert reference.percentile(10.5) == 10


def test_percentile_counts_every_value_below_and_equal_with_ties_and_gaps() -> None:
    """The percentile reads a sorted copy of the sample; it must say what counting the
    whole sample says, ties, integers, booleans, strings and NaN included."""
    values: tuple[FeatureScalar, ...] = (
        3,
        1.5,
        3.0,
        None,
        "x",
        7,
        3,
        float("nan"),
        -2.0,
        True,
        12.25,
        7.0,
        0,
        3,
    )
    reference = FeatureReference(values=values, favourable_values=())
    numbers = [float(v) for v in values if isinstance(v, (int, float))]

    def counted(value: float) -> int:
        below = sum(v < value for v in numbers)
        equal = sum(v == value for v in numbers)
        return round(100 * (below + 0.5 * equal) / len(numbers))

    probes = list({*numbers, -5.0, 0.5, 2.99, 3.01, 100.0, float("nan"), float("inf")})
    assert [reference.percentile(p) for p in probes] == [counted(p) for p in probes]
    assert len({reference.percentile(p) for p in probes}) > 5


def test_the_typical_favourable_value_is_read_once_per_kind_of_feature() -> None:
    reference = FeatureReference(values=(), favourable_values=(2.0, 9.0, 4.0, "b", "a", "b"))
    number = FeatureSpec(name="n", type="number", description="a number")
    integer = FeatureSpec(name="n", type="integer", description="a count")
    category = FeatureSpec(name="n", type="category", description="a choice", categories=["a", "b"])
    assert reference.typical_favourable(number) == 4.0
    assert reference.typical_favourable(integer) == 4.0
    assert reference.typical_favourable(category) == "b"
    # A category read in another order of its categories is another kind of reading.
    tied = FeatureReference(values=(), favourable_values=("a", "b"))
    first_b = FeatureSpec(name="n", type="category", description="a choice", categories=["b", "a"])
    assert tied.typical_favourable(category) == "a"
    assert tied.typical_favourable(first_b) == "b"


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_reference_sample_is_the_hashed_background_scored_by_the_model(
    registry: ModelRegistry, model_id: str
) -> None:
    model = registry.get(model_id)
    reference = reference_sample(model)
    assert reference.sha256 == model.manifest.background_sha256
    path = model.directory / model.manifest.background
    assert hashlib.sha256(path.read_bytes()).hexdigest() == reference.sha256
    rows = background_rows(registry, model_id)
    decisions = [decide(model, row, 1e-6).prediction for row in rows]
    favourable = [not d.adverse for d in decisions]
    assert reference.rows == len(rows)
    assert reference.base_rate == pytest.approx(sum(favourable) / len(rows))
    assert reference.mean_score == pytest.approx(sum(d.score for d in decisions) / len(rows))
    terms = sorted(
        float(r["duration_months"]) for r, ok in zip(rows, favourable, strict=True) if ok
    )
    middle = len(terms) // 2
    median = terms[middle] if len(terms) % 2 else (terms[middle - 1] + terms[middle]) / 2
    typical = reference.features["duration_months"].typical_favourable(
        model.manifest.feature("duration_months")
    )
    assert typical == round(median)


def test_plan_records_the_sample_and_the_context(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    model = registry.get(GBM)
    decision = decide(model, denied_applicant, 1e-6)
    plan = plan_decision(model, denied_applicant, decision, Audience.APPLICANT)
    assert plan.reference is not None
    assert plan.reference.sha256 == model.manifest.background_sha256
    assert plan.reference.sample == model.manifest.background
    term = plan.factor("duration_months")
    assert term is not None and term.role == "principal"
    durations = [float(r["duration_months"]) for r in background_rows(registry, GBM)]
    below = sum(d < 48 for d in durations) + 0.5 * sum(d == 48 for d in durations)
    assert term.percentile == round(100 * below / len(durations))
    total = sum(abs(i.contribution) for i in decision.attributions.items)
    assert term.share == pytest.approx(abs(term.contribution) / total, abs=1e-4)
    assert plan.attribution_method == "exact"
    # Bands place nothing: no percentile for the 1-4 instalment band.
    row = dict(denied_applicant)
    analyst = plan_decision(model, row, decision, Audience.ANALYST)
    assert all(p.percentile is None for p in analyst.factors if p.feature == "installment_rate")


def test_a_plan_without_reference_or_recourse_still_plans(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    model = registry.get(GBM)
    decision = decide(model, denied_applicant, 1e-6)
    plan = content_plan(
        model.manifest,
        decision.prediction,
        decision.attributions,
        decision.principal_reasons,
        Audience.ANALYST,
    )
    assert plan.reference is None and plan.recourse is None
    assert all(p.percentile is None and p.typical_favourable is None for p in plan.factors)
    assert len(plan.factors) == 4


def test_sampling_attributions_are_planned_as_estimates(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    model = registry.get(LOGISTIC)
    decision = decide(model, denied_applicant, 1e-6)
    sampled = decision.attributions.model_copy(update={"algorithm": "permutation-sampling"})
    plan = content_plan(
        model.manifest, decision.prediction, sampled, decision.principal_reasons, Audience.ANALYST
    )
    assert plan.attribution_method == "estimated"


def test_a_changed_reference_sample_is_refused(models_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / GBM
    shutil.copytree(models_dir / GBM, directory)
    model = load_model(directory)
    build_explainer(model)
    background = directory / model.manifest.background
    rows = json.loads(background.read_text())
    rows[0]["duration_months"] = 6
    background.write_text(json.dumps(rows))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        reference_sample(model)
