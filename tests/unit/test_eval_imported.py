"""The eval's imported model (bench/eval_imported.py) and its per-model figures, no LLM."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from bench.eval import (
    PER_OUTCOME,
    drafting_summary,
    eval_decisions,
    sample_all,
    table,
    text_metrics,
)
from bench.eval_examples import PER_AUDIENCE, examples_markdown
from bench.eval_imported import (
    MODEL_ID,
    REVIEW,
    ReviewIncomplete,
    apply_review,
    build_outside_forest,
    outside_encoding,
)
from bench.eval_order import claimed_order_accuracy
from bench.eval_texts import faithful_and_mutants
from bench.run import applicant_rows
from expound.domain import Audience
from expound.explainers.algorithms import build_explainer
from expound.explainers.decision import decide
from expound.models.registry import ModelRegistry
from expound.models.todos import todo_fields
from expound.rankers.embedding import EmbeddingRanker, HashingEmbedder
from expound.rankers.gate import category_phrases, verify
from tests.conftest import GBM
from tests.support.eval_results import clean_mutations


@pytest.fixture(scope="module")
def eval_models(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    """The demo GBM beside the outside forest, trained, imported and reviewed here."""
    workdir = tmp_path_factory.mktemp("eval-imported")
    build_outside_forest(workdir)
    shutil.copytree(models_dir / GBM, workdir / "models" / GBM)
    return ModelRegistry.from_directory(workdir / "models", build_explainer)


def test_the_reviewed_forest_is_served_with_the_owners_wording(
    eval_models: ModelRegistry,
) -> None:
    review = json.loads(REVIEW.read_text())
    manifest = eval_models.get(MODEL_ID).manifest
    assert manifest.title == review["title"]
    assert manifest.kind == "sklearn" and len(manifest.columns or []) == 29
    assert manifest.decision.adverse_when == "score_below"
    assert not todo_fields(manifest.model_dump(mode="json"))
    actionable = {f.name for f in manifest.features if f.actionable}
    assert actionable == {n for n, f in review["features"].items() if f["actionable"]}
    assert all(f.recourse is not None for f in manifest.features if f.name == "duration_months")
    # A review may label an integer's bands; the imported integer's range admits them.
    labelled = {n: f["value_labels"] for n, f in review["features"].items() if "value_labels" in f}
    assert set(labelled) == {"installment_rate", "residence_since"}
    for name, labels in labelled.items():
        assert manifest.feature(name).type == "integer"
        assert manifest.feature(name).value_labels == labels
    # The applicants in the outside encoding: a high score (repays) is an approval.
    for row in applicant_rows()[:20]:
        prediction = decide(eval_models.get(MODEL_ID), outside_encoding(row), 1e-6).prediction
        assert prediction.adverse == (prediction.score < manifest.decision.threshold)


def test_an_incomplete_review_is_refused(eval_models: ModelRegistry) -> None:
    imported = json.loads(REVIEW.read_text())
    manifest = eval_models.get(MODEL_ID).manifest.model_dump(mode="json")
    manifest["features"][0]["description"] = "TODO: describe it"
    wording = dict(imported["features"])
    del wording[manifest["features"][0]["name"]]
    with pytest.raises(ReviewIncomplete, match="TODO left"):
        apply_review(manifest, imported | {"features": wording})
    with pytest.raises(ReviewIncomplete, match="lacks"):
        apply_review(manifest, imported | {"features": {"shoe_size": {"description": "x"}}})


async def test_the_imported_model_is_chosen_and_reported_like_the_demo_ones(
    eval_models: ModelRegistry,
) -> None:
    decisions = eval_decisions(eval_models, (GBM, MODEL_ID))
    for model_id in (GBM, MODEL_ID):
        mine = [facts for facts, _ in decisions if facts.model_id == model_id]
        outcomes = Counter((f.prediction.adverse, f.audience) for f in mine)
        assert outcomes == {(a, who): PER_OUTCOME for a in (True, False) for who in Audience}
    runs = await sample_all(EmbeddingRanker(HashingEmbedder()), decisions, eval_models, seed=3)
    summary = drafting_summary(runs)
    by_model = summary["by_model"]
    assert list(by_model) == [GBM, MODEL_ID]
    assert sum(s["decisions"] for s in by_model.values()) == summary["decisions"]
    imported = [r for r in runs if r["model_id"] == MODEL_ID]
    assert by_model[MODEL_ID]["selected"]["words"] == pytest.approx(
        sum(r["selected"]["words"] for r in imported) / len(imported), abs=1e-3
    )
    for audience in by_model[MODEL_ID]["selected_by_audience"].values():
        assert audience["seconds_p50"] <= audience["seconds_p95"]
    results = {
        "samples": summary,
        "mutations": clean_mutations(),
    }
    rows = {row["metric"]: row["value"] for row in table(results)}
    n = by_model[MODEL_ID]["decisions"]
    assert rows[f"samples [{MODEL_ID}]: fallback rate ({n} decisions)"] == 0.0
    assert (
        rows[f"samples [{GBM}]: selected words, analyst"]
        == (by_model[GBM]["selected_by_audience"]["ANALYST"]["words"])
    )
    page = examples_markdown("samples", runs, [f for f, _ in decisions])
    for audience in Audience:
        section = page.split(f"## {audience.value.lower()}\n")[1].split("\n## ")[0]
        assert section.count(f": {MODEL_ID}, ") == PER_AUDIENCE // 2
        assert section.count(f": {GBM}, ") == PER_AUDIENCE // 2


def test_a_category_is_read_by_its_description_written_loosely() -> None:
    assert category_phrases("overdrawn (balance below 0 DM)") == [
        "overdrawn (balance below 0 DM)",
        "overdrawn, balance below 0 DM",
        "overdrawn",
    ]
    assert category_phrases("no checking account") == ["no checking account"]
    assert category_phrases("") == []
    # Each alternative a description offers names it; a bound ("or more") is no alternative.
    assert category_phrases("no savings or unknown") == [
        "no savings or unknown",
        "no savings",
        "unknown",
    ]
    assert category_phrases("a balance of 200 DM or more, or salary paid in for a year") == [
        "a balance of 200 DM or more, or salary paid in for a year",
        "a balance of 200 DM or more",
        "salary paid in for a year",
    ]
    assert category_phrases("seven years or more") == ["seven years or more"]


def test_every_mutant_of_the_imported_models_texts_is_rejected(
    eval_models: ModelRegistry,
) -> None:
    """Its categories are codes ("f_1") no text names: a wrong category must still be read
    from its description, also written with a comma or by its head alone."""
    decisions = eval_decisions(eval_models, (MODEL_ID,))
    caught: Counter[str] = Counter()
    for variant, (facts, _) in enumerate(decisions):
        faithful, mutants = faithful_and_mutants(facts, variant)
        assert verify(facts, faithful).passed, faithful
        for kind, text in mutants.items():
            assert not verify(facts, text).passed, (kind, text)
            caught[kind] += 1
    assert caught["value"] == len(decisions)


def test_top4_coverage_counts_the_features_of_the_reasons_a_text_names(
    eval_models: ModelRegistry,
) -> None:
    """A compliance text lists principal reasons by code and text: each names its group's
    features (as plan coverage reads it), though no feature's own name appears."""
    declines = [
        facts
        for facts, _ in eval_decisions(eval_models, (MODEL_ID,))
        if facts.audience is Audience.COMPLIANCE and facts.prediction.adverse
    ]
    grouped = [f for f in declines if any(len(r.features) > 1 for r in f.reasons)]
    assert grouped
    credited = []
    for facts in grouped:
        text = "Principal reasons: " + "; ".join(f"{r.code}: {r.text}" for r in facts.reasons)
        top = {f.feature for f in facts.top}
        in_reasons = {name for r in facts.reasons for name in r.features}
        metrics = text_metrics(facts, text, eval_models.get(MODEL_ID))
        assert metrics["top4_mentioned"] == len(top & in_reasons) / len(top)
        assert metrics["top4_mentioned_by_name"] <= metrics["top4_mentioned"]
        credited.append(metrics["top4_mentioned_by_name"] < metrics["top4_mentioned"])
    assert any(credited)  # a top feature named only through its reason's group
    none_named = text_metrics(grouped[0], "The application was declined.")
    assert none_named["top4_mentioned"] == 0.0


def test_a_list_by_contribution_after_the_reason_codes_is_read_by_contribution(
    eval_models: ModelRegistry,
) -> None:
    """A compliance text lists the reasons by code (ranked by group), then the factors by
    size of contribution: the second list is read in |contribution| order, the first in
    reason order (and fails reversed)."""
    decisions = eval_decisions(eval_models, (MODEL_ID,))
    for facts, deterministic in decisions:
        assert claimed_order_accuracy(facts, deterministic) == 1.0, deterministic
    compliance = [
        (facts, text)
        for facts, text in decisions
        if facts.audience is Audience.COMPLIANCE and facts.prediction.adverse
    ]
    for facts, text in compliance:
        # The code list itself is still read in reason order: reversed, it fails.
        first, rest = text.split("Principal reasons, in order: ", 1)
        listed, after = rest.split(". Factors by size", 1)
        items = [item.split(". ", 1)[1] for item in listed.split("; ")]
        swapped = f"{first}Principal reasons, in order: {'; '.join(items[::-1])}."
        swapped += f" Factors by size{after}"
        assert claimed_order_accuracy(facts, swapped) < 1.0, swapped
