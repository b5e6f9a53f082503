"""Counterfactual recourse: exact, declared, re-scored; and the manifest's recourse block."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from expound.domain import Audience
from expound.explainers.algorithms import build_explainer
from expound.explainers.decision import decide
from expound.explainers.facts import decision_facts
from expound.explainers.plan import plan_decision
from expound.explainers.recourse import search_recourse
from expound.generators.deterministic import NO_RECOURSE, deterministic_explanation, no_recourse
from expound.generators.grammar import candidate_grammars
from expound.generators.prompting import chat_facts
from expound.models.manifest import SECOND_PERSON, FeatureSpec, RecourseSpec
from expound.models.registry import ModelRegistry, ServedModel, serve_model
from expound.models.scoring import score_of
from expound.rankers.gate import verify
from tests.conftest import GBM, LOGISTIC
from tests.support.model_dirs import read_manifest, write_manifest


def denied_rows(model: ServedModel, count: int) -> list[dict[str, Any]]:
    rows = json.loads((model.directory / model.manifest.background).read_text())
    return [r for r in rows if decide(model, r, 1e-6).prediction.adverse][:count]


def grid_moves(model: ServedModel, row: dict[str, Any]) -> list[tuple[str, Any, float]]:
    """Every declared single change, enumerated here independently of the search."""
    moves = []
    for spec in model.manifest.features:
        recourse = spec.recourse
        if recourse is None:
            continue
        if recourse.order is not None:
            if row[spec.name] not in recourse.order:
                continue
            here = recourse.order.index(row[spec.name])
            for j, category in enumerate(recourse.order):
                ok = (j > here and recourse.direction != "decrease") or (
                    j < here and recourse.direction != "increase"
                )
                if ok:
                    moves.append((spec.name, category, abs(j - here) / (len(recourse.order) - 1)))
            continue
        assert recourse.minimum is not None and recourse.maximum is not None
        assert recourse.step is not None
        value = float(row[spec.name])
        point = recourse.minimum
        while point <= recourse.maximum + 1e-9:
            up, down = point > value, point < value
            if (up and recourse.direction != "decrease") or (
                down and recourse.direction != "increase"
            ):
                cost = abs(point - value) / (recourse.maximum - recourse.minimum)
                moves.append((spec.name, point, cost))
            point += recourse.step
    return moves


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_every_counterfactual_flips_when_rescored_and_changes_only_what_is_declared(
    registry: ModelRegistry, model_id: str
) -> None:
    model = registry.get(model_id)
    declared = {s.name: s for s in model.manifest.features if s.recourse is not None}
    found = 0
    for row in denied_rows(model, 15):
        recourse = search_recourse(model, row)
        assert recourse.searched_features == sorted(declared)
        for counterfactual in recourse.counterfactuals:
            found += 1
            assert 1 <= len(counterfactual.changes) <= 2
            changed = dict(row)
            for change in counterfactual.changes:
                spec = declared[change.feature]
                assert not spec.protected and spec.actionable
                assert change.before == row[change.feature] != change.after
                changed[change.feature] = change.after
            prediction = decide(model, changed, 1e-6).prediction
            assert counterfactual.flips and not prediction.adverse
            assert prediction.score == pytest.approx(counterfactual.score, abs=1e-12)
    assert found >= 10


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_the_search_is_exact_no_smaller_single_change_flips(
    registry: ModelRegistry, model_id: str
) -> None:
    model = registry.get(model_id)
    for row in denied_rows(model, 8):
        recourse = search_recourse(model, row)
        flipping = [
            (cost, name, value)
            for name, value, cost in grid_moves(model, row)
            if not decide(model, dict(row) | {name: value}, 1e-6).prediction.adverse
        ]
        if not flipping:
            assert all(len(c.changes) == 2 for c in recourse.counterfactuals)
            continue
        cheapest = min(flipping)[0]
        assert recourse.counterfactuals, row
        assert recourse.counterfactuals[0].distance <= cheapest + 1e-6
        singles = [c for c in recourse.counterfactuals if len(c.changes) == 1]
        if singles:
            assert singles[0].distance == pytest.approx(cheapest, abs=1e-6)
        # Smallest normalised change first.
        distances = [c.distance for c in recourse.counterfactuals]
        assert distances == sorted(distances)


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_the_first_counterfactual_is_the_smallest_of_all_singles_and_pairs(
    registry: ModelRegistry, model_id: str
) -> None:
    model = registry.get(model_id)
    rule = model.manifest.decision
    pairs_first = 0
    for row in denied_rows(model, 8):
        moves = grid_moves(model, row)
        combos = [[m] for m in moves] + [
            [a, b] for i, a in enumerate(moves) for b in moves[i + 1 :] if a[0] != b[0]
        ]
        changed = [dict(row) | {name: value for name, value, _ in combo} for combo in combos]
        encoded = np.vstack([model.encode(c) for c in changed])
        scores = [score_of(model.manifest.score.space, float(r)) for r in model.scorer.raw(encoded)]
        costs = [
            sum(cost for _, _, cost in combo)
            for combo, score in zip(combos, scores, strict=True)
            if not rule.is_adverse(score)
        ]
        recourse = search_recourse(model, row)
        if not costs:
            assert recourse.counterfactuals == []
            continue
        assert recourse.counterfactuals[0].distance == pytest.approx(min(costs), abs=1e-6)
        pairs_first += len(recourse.counterfactuals[0].changes) == 2
    if model_id == LOGISTIC:
        # The case that tells "smallest first" from "one feature first" occurs here.
        assert pairs_first > 0


def test_a_pair_is_kept_only_when_neither_change_flips_alone(registry: ModelRegistry) -> None:
    model = registry.get(GBM)
    for row in denied_rows(model, 15):
        for counterfactual in search_recourse(model, row).counterfactuals:
            if len(counterfactual.changes) != 2:
                continue
            for change in counterfactual.changes:
                alone = dict(row) | {change.feature: change.after}
                assert decide(model, alone, 1e-6).prediction.adverse


def test_approvals_get_no_recourse(
    registry: ModelRegistry, approved_applicant: dict[str, Any]
) -> None:
    model = registry.get(GBM)
    decision = decide(model, approved_applicant, 1e-6)
    assert plan_decision(model, approved_applicant, decision, Audience.APPLICANT).recourse is None


def _model_with(models_dir: Path, tmp_path: Path, recourse: dict[str, Any]) -> ServedModel:
    directory = tmp_path / GBM
    shutil.copytree(models_dir / GBM, directory)
    manifest = read_manifest(directory)
    for feature in manifest["features"]:
        feature["recourse"] = recourse.get(feature["name"])
    write_manifest(directory, manifest)
    return serve_model(directory, build_explainer)


def test_no_declared_recourse_searches_nothing_and_says_nothing(
    models_dir: Path, tmp_path: Path, denied_applicant: dict[str, Any]
) -> None:
    model = _model_with(models_dir, tmp_path, {})
    decision = decide(model, denied_applicant, 1e-6)
    plan = plan_decision(model, denied_applicant, decision, Audience.APPLICANT)
    assert plan.recourse is not None
    assert plan.recourse.searched_features == [] and plan.recourse.counterfactuals == []
    facts = decision_facts(model.manifest, decision, Audience.APPLICANT, "", plan)
    text = deterministic_explanation(facts)
    assert "instead of" not in text and NO_RECOURSE not in text
    assert verify(facts, text).passed


@pytest.mark.parametrize("audience", list(Audience), ids=lambda a: a.value)
def test_none_found_is_said_honestly(
    models_dir: Path, tmp_path: Path, denied_applicant: dict[str, Any], audience: Audience
) -> None:
    # One rung of the instalment band is all this model may change: not enough to flip.
    model = _model_with(
        models_dir,
        tmp_path,
        {"installment_rate": {"direction": "decrease", "minimum": 2, "maximum": 3, "step": 1}},
    )
    decision = decide(model, denied_applicant, 1e-6)
    plan = plan_decision(model, denied_applicant, decision, audience)
    assert plan.recourse is not None and plan.recourse.searched_features == ["installment_rate"]
    assert plan.recourse.counterfactuals == []
    facts = decision_facts(model.manifest, decision, audience, "", plan)
    # Said to the applicant; of the applicant to analysts and compliance officers.
    said = no_recourse(audience)
    assert (said == NO_RECOURSE) == (audience is Audience.APPLICANT)
    assert (SECOND_PERSON.search(said) is None) == (audience is not Audience.APPLICANT)
    text = deterministic_explanation(facts)
    assert said in text
    verdict = verify(facts, text)
    assert verdict.passed, verdict.violations
    # The chat prompt's data and every text the grammars admit say it the same way.
    assert chat_facts(facts)["counterfactual"] == said
    rng = random.Random(3)
    sampled = [p.grammar.sample(rng) for p in candidate_grammars(facts, 4) for _ in range(3)]
    assert any(said in t for t in sampled)
    for sample in sampled:
        assert verify(facts, sample).passed, (sample, verify(facts, sample).violations)


def test_search_budget_on_the_demo_models(registry: ModelRegistry) -> None:
    # The budget is ~20 ms a search; this bound only catches an order-of-magnitude
    # regression on a loaded CI machine (figures: README, "Recourse").
    import time

    for model_id in (GBM, LOGISTIC):
        model = registry.get(model_id)
        rows = denied_rows(model, 10)
        search_recourse(model, rows[0])
        started = time.perf_counter()
        for row in rows:
            search_recourse(model, row)
        per_search_ms = (time.perf_counter() - started) * 1000 / len(rows)
        assert per_search_ms < 200, (model_id, per_search_ms)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (
            {"name": "age", "type": "integer", "protected": True, "actionable": True},
            "only an actionable, unprotected",
        ),
        ({"name": "term", "type": "integer"}, "only an actionable, unprotected"),
        ({"name": "phone", "type": "bool", "actionable": True}, "yes/no"),
    ],
)
def test_recourse_only_for_actionable_unprotected_features(
    spec: dict[str, Any], problem: str
) -> None:
    grid = {"direction": "decrease", "minimum": 1, "maximum": 4, "step": 1}
    with pytest.raises(ValidationError, match=problem):
        FeatureSpec.model_validate({"description": "a feature", "recourse": grid} | spec)


def test_recourse_blocks_are_checked() -> None:
    with pytest.raises(ValidationError, match="minimum, maximum and step"):
        RecourseSpec(direction="decrease", minimum=1)
    with pytest.raises(ValidationError, match="maximum must exceed"):
        RecourseSpec(direction="decrease", minimum=4, maximum=1, step=1)
    with pytest.raises(ValidationError, match="not both"):
        RecourseSpec(direction="increase", order=["a", "b"], step=1)
    category = {
        "name": "savings",
        "type": "category",
        "description": "savings",
        "categories": ["low", "high"],
        "actionable": True,
    }
    with pytest.raises(ValidationError, match="unknown categories"):
        FeatureSpec.model_validate(
            category | {"recourse": {"direction": "increase", "order": ["low", "huge"]}}
        )
    with pytest.raises(ValidationError, match="categories take an order"):
        FeatureSpec.model_validate(
            category
            | {"recourse": {"direction": "increase", "minimum": 0, "maximum": 1, "step": 1}}
        )
    number = {"name": "term", "type": "integer", "description": "term", "actionable": True}
    with pytest.raises(ValidationError, match="integer grid"):
        FeatureSpec.model_validate(
            number
            | {"recourse": {"direction": "decrease", "minimum": 1, "maximum": 4, "step": 0.5}}
        )
    with pytest.raises(ValidationError, match="grid points"):
        FeatureSpec.model_validate(
            number
            | {"recourse": {"direction": "decrease", "minimum": 1, "maximum": 5000, "step": 1}}
        )
    accepted = FeatureSpec.model_validate(
        category | {"recourse": {"direction": "increase", "order": ["low", "high"]}}
    )
    assert accepted.recourse is not None and accepted.recourse.order == ["low", "high"]


def test_beyond_the_row_budget_the_cheapest_pairs_are_tried_and_said_so(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from expound.explainers import recourse as module

    model = registry.get(LOGISTIC)
    row = denied_rows(model, 1)[0]
    moves = module._moves(model.manifest, row)
    everything, exhaustive = module._cheapest_pairs(moves, 10**9)
    assert exhaustive
    costs = sorted(sum(m.cost for m in pair) for pair in everything)
    budget = len(everything) // 5
    chosen, exhaustive = module._cheapest_pairs(moves, budget)
    assert not exhaustive and len(chosen) == budget
    # Exactly the cheapest: the largest chosen cost is the budget-th smallest of all.
    assert max(sum(m.cost for m in pair) for pair in chosen) == pytest.approx(costs[budget - 1])
    monkeypatch.setattr(module, "MAX_ROWS", len(moves) + budget)
    limited = module.search_recourse(model, row)
    assert not limited.exhaustive
    assert limited.rows_scored <= len(moves) + budget + module.MAX_COUNTERFACTUALS
    for counterfactual in limited.counterfactuals:
        changed = dict(row) | {c.feature: c.after for c in counterfactual.changes}
        assert not decide(model, changed, 1e-6).prediction.adverse


def test_a_search_that_was_not_exhaustive_never_says_none_was_found(
    models_dir: Path,
    tmp_path: Path,
    denied_applicant: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from expound.explainers import recourse as module

    model = _model_with(
        models_dir,
        tmp_path,
        {
            "installment_rate": {"direction": "decrease", "minimum": 2, "maximum": 3, "step": 1},
            "existing_credits": {"direction": "decrease", "minimum": 1, "maximum": 2, "step": 1},
        },
    )
    applicant = denied_applicant | {"existing_credits": 2}
    # Two single changes and no room for their pair: the search cannot be exhaustive.
    monkeypatch.setattr(module, "MAX_ROWS", 2)
    decision = decide(model, applicant, 1e-6)
    assert decision.prediction.adverse
    plan = plan_decision(model, applicant, decision, Audience.APPLICANT)
    assert plan.recourse is not None and not plan.recourse.exhaustive
    assert plan.recourse.counterfactuals == []
    facts = decision_facts(model.manifest, decision, Audience.APPLICANT, "", plan)
    assert NO_RECOURSE not in deterministic_explanation(facts)
    from expound.rankers.gate import ViolationKind

    kinds = {v.kind for v in verify(facts, NO_RECOURSE).violations}
    assert ViolationKind.WRONG_COUNTERFACTUAL in kinds


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_the_grid_built_as_arrays_is_the_grid_built_row_by_row(
    registry: ModelRegistry, model_id: str
) -> None:
    """The search builds and scores its rows over whole arrays; each row, and whether it
    flips, must be exactly what changing and scoring it alone gives."""
    from expound.explainers import recourse as module

    model = registry.get(model_id)
    manifest = model.manifest
    compared = 0
    for row in denied_rows(model, 10):
        base = model.encode(row)[0]
        moves = module._moves(manifest, row)
        pairs, _ = module._cheapest_pairs(moves, 10**9)
        combos = [(m,) for m in moves] + pairs
        expected = []
        for combo in combos:
            changed = base.copy()
            for move in combo:
                changed[list(move.columns)] = move.encoded
            expected.append(changed)
        grid = module._grid(base, moves, combos)
        assert grid.dtype == base.dtype
        assert np.array_equal(grid, np.stack(expected))
        raw = model.scorer.raw(grid)
        one_by_one = [
            not manifest.decision.is_adverse(score_of(manifest.score.space, float(r))) for r in raw
        ]
        assert module._flips(manifest, raw) == one_by_one
        compared += len(combos)
    assert compared > 1000


def test_flips_at_the_threshold_are_decided_as_the_decision_decides_them(
    registry: ModelRegistry,
) -> None:
    from expound.explainers import recourse as module

    manifest = registry.get(GBM).manifest
    # Raw outputs on and around the threshold's log-odds (0 for 0.5), down to one ulp.
    raw = np.array([0.0, -0.0, 5e-324, -5e-324, 1e-17, -1e-17, 1e-12, -1e-12, -1e-10, 3.0, -3.0])
    expected = [
        not manifest.decision.is_adverse(score_of(manifest.score.space, float(r))) for r in raw
    ]
    assert module._flips(manifest, raw) == expected
    assert expected.count(True) >= 3 and expected.count(False) >= 3


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_the_cheapest_flip_per_features_is_the_one_a_pass_over_every_combination_finds(
    registry: ModelRegistry, model_id: str
) -> None:
    from expound.explainers import recourse as module

    model = registry.get(model_id)
    manifest = model.manifest
    kept = 0
    for row in denied_rows(model, 10):
        moves = module._moves(manifest, row)
        pairs, _ = module._cheapest_pairs(moves, 10**9)
        combos = [(m,) for m in moves] + pairs
        flips = module._flips(
            manifest, model.scorer.raw(module._grid(model.encode(row)[0], moves, combos))
        )
        alone = {
            (c[0].feature, c[0].value)
            for c, f in zip(combos, flips, strict=True)
            if len(c) == 1 and f
        }
        expected: dict[tuple[str, ...], tuple[float, int, Any]] = {}
        for order, (combo, flip) in enumerate(zip(combos, flips, strict=True)):
            if not flip or (len(combo) == 2 and any((m.feature, m.value) in alone for m in combo)):
                continue
            key = tuple(m.feature for m in combo)
            cost = sum(m.cost for m in combo)
            if key not in expected or (cost, order) < expected[key][:2]:
                expected[key] = (cost, order, combo)
        assert module._smallest_per_features(moves, combos, flips) == expected
        kept += len(expected)
    assert kept > 10
