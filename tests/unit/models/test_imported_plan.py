"""The plan, recourse, deterministic text and gate on a model imported through
`expound models import` (an outside forest: one-hot groups, a score where LOW is adverse)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from expound.domain import Audience
from expound.explainers.algorithms import build_explainer
from expound.explainers.decision import decide
from expound.explainers.facts import decision_facts
from expound.explainers.plan import plan_decision
from expound.generators.deterministic import deterministic_explanation
from expound.models.importing import feature_value
from expound.models.registry import serve_model
from expound.rankers.gate import verify


def test_an_import_declares_no_recourse(imported: Path) -> None:
    manifest = json.loads((imported / "manifest.json").read_text())
    assert all(f.get("recourse") is None for f in manifest["features"])
    assert all(not f["actionable"] for f in manifest["features"])


def test_an_imported_model_is_planned_and_its_texts_pass_the_gate(
    outside: dict[str, Any], reviewed_dir: Path
) -> None:
    path = reviewed_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    # As its owner would declare it: the loan term may be shortened.
    term = next(f for f in manifest["features"] if f["name"] == "duration_months")
    term |= {
        "actionable": True,
        "recourse": {"direction": "decrease", "minimum": 6, "maximum": 72, "step": 6},
    }
    path.write_text(json.dumps(manifest))
    model = serve_model(reviewed_dir, build_explainer)
    rule = model.manifest.decision
    assert rule.adverse_when == "score_below"
    denials = flips = 0
    for record in outside["data"].head(30).to_dict(orient="records"):
        features = {s.name: feature_value(s, record) for s in model.manifest.features}
        decision = decide(model, features, 1e-6)
        for audience in Audience:
            plan = plan_decision(model, features, decision, audience)
            facts = decision_facts(model.manifest, decision, audience, "", plan)
            text = deterministic_explanation(facts)
            verdict = verify(facts, text)
            assert verdict.passed, (text, verdict.violations)
            # A one-hot group is one factor with one category value.
            for planned in plan.factors:
                spec = model.manifest.feature(planned.feature)
                if spec.onehot_columns is not None:
                    assert planned.value in (spec.categories or [])
        if not decision.prediction.adverse:
            continue
        denials += 1
        recourse = plan_decision(model, features, decision, Audience.APPLICANT).recourse
        assert recourse is not None and recourse.searched_features == ["duration_months"]
        for counterfactual in recourse.counterfactuals:
            (change,) = counterfactual.changes
            assert change.feature == "duration_months"
            assert isinstance(change.after, float) and change.after < float(str(change.before))
            rescored = decide(model, features | {"duration_months": change.after}, 1e-6)
            # Low is adverse here: the flip is a score at or above the threshold.
            assert not rescored.prediction.adverse
            assert rescored.prediction.score >= rule.threshold
            flips += 1
    assert denials > 0 and flips > 0
