"""The eval's summaries and plan metrics (bench/eval.py), without any LLM."""

from __future__ import annotations

from typing import Any

import pytest

from bench.eval import (
    counterfactual_validity,
    drafting_summary,
    eval_decisions,
    plan_coverage,
    sample_all,
    summarise,
    table,
    text_metrics,
)
from bench.eval_examples import examples_markdown
from bench.eval_order import claimed_order_accuracy
from bench.eval_routing import question_set, table_accuracy
from bench.eval_texts import faithful_and_mutants, lead_factors
from expound.domain import Audience
from expound.generators.deterministic import counterfactual_sentence, deterministic_explanation
from expound.models.registry import ModelRegistry
from expound.rankers.embedding import EmbeddingRanker, HashingEmbedder
from expound.rankers.gate import ViolationKind, verify
from tests.conftest import GBM, LOGISTIC
from tests.support.eval_results import clean_mutations
from tests.support.facts_util import facts_for


def test_summarise_reports_an_empty_mode_instead_of_crashing() -> None:
    summary = summarise([])
    assert summary["texts"] == 0
    for key in ("passed_rate", "hallucinated_rate", "plan_coverage", "words", "coverage"):
        assert summary[key] is None
    assert summary["plan_coverage_texts"] == 0


def test_a_run_where_every_call_fell_back_is_reported(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, Audience.ANALYST)
    text = deterministic_explanation(facts)
    selected = text_metrics(facts, text, registry.get(GBM)) | {"text": text}
    runs = [
        {
            "model_id": GBM,
            "decision": "decline",
            "audience": "ANALYST",
            "fallback_reason": "DEADLINE_EXCEEDED",
            "seconds": 20.0,
            "selected": selected,
            "candidates": [],
        }
    ]
    constrained = drafting_summary(runs)
    assert constrained["fallback_rate"] == 1.0
    assert constrained["candidates"]["texts"] == 0
    assert constrained["selected_drafted_only"] is None
    results = {
        "constrained": constrained,
        "free": drafting_summary([]),
        "mutations": clean_mutations(),
    }
    rows = {row["metric"]: row["value"] for row in table(results)}
    assert rows["constrained: selected plan_coverage (n=1)"] == 1.0
    assert rows["free: fallback rate (0 decisions)"] is None
    assert rows["constrained: selected words, analyst"] == len(text.split())
    assert rows["constrained: selected top-4 coverage, analyst"] == selected["top4_mentioned"]


@pytest.mark.parametrize("model_id", [GBM, LOGISTIC])
def test_plan_coverage_and_counterfactual_validity(
    registry: ModelRegistry, denied_applicant: dict[str, Any], model_id: str
) -> None:
    model = registry.get(model_id)
    facts = facts_for(registry, model_id, denied_applicant, Audience.ANALYST)
    assert facts.plan is not None and facts.plan.recourse is not None
    text = deterministic_explanation(facts)
    verdict = verify(facts, text)
    assert plan_coverage(facts, text, verdict.mentioned) == 1.0
    assert counterfactual_validity(facts, verdict, model) == 1.0
    # Half the plan named: half the coverage.
    half = [p.feature for p in facts.plan.factors[:2]]
    assert plan_coverage(facts, "", half) == pytest.approx(0.5)
    # A stated counterfactual that is not the recorded one is invalid.
    first = facts.plan.recourse.counterfactuals[0]
    altered = text.replace(f"{first.score:.3f}", f"{first.score - 0.2:.3f}")
    assert counterfactual_validity(facts, verify(facts, altered), model) == 0.0
    # A text that states none has no figure.
    assert counterfactual_validity(facts, verify(facts, "Decision: decline."), model) is None


def test_summarise_means_the_new_metrics_over_the_texts_that_have_them() -> None:
    base = {
        "passed": True,
        "sign_accuracy": None,
        "value_accuracy": None,
        "rank_accuracy": None,
        "rank_accuracy_absolute": None,
        "top4_mentioned": 1.0,
        "hallucinated": False,
        "coverage": 1.0,
        "words": 100,
    }
    rows = [
        base | {"plan_coverage": 1.0, "counterfactual_validity": None},
        base | {"plan_coverage": 0.5, "counterfactual_validity": 1.0, "words": 50},
    ]
    summary = summarise(rows)
    assert summary["plan_coverage"] == 0.75 and summary["plan_coverage_texts"] == 2
    assert summary["counterfactual_validity"] == 1.0
    assert summary["counterfactual_validity_texts"] == 1
    assert summary["words"] == 75


def test_eval_texts_follow_the_plan_and_every_mutant_is_caught(registry: ModelRegistry) -> None:
    decisions = eval_decisions(registry)
    assert {facts.audience for facts, _ in decisions} == set(Audience)
    placed_any = False
    for variant, (facts, deterministic) in enumerate(decisions):
        assert verify(facts, deterministic).passed
        faithful, mutants = faithful_and_mutants(facts, variant)
        verdict = verify(facts, faithful)
        assert verdict.passed, (faithful, verdict.violations)
        if facts.audience is not Audience.APPLICANT:
            assert plan_coverage(facts, faithful, verdict.mentioned) == 1.0
        # The voice mutant is the staff audiences' own; it is wrong in its voice alone.
        assert ("voice" in mutants) == (facts.audience is not Audience.APPLICANT)
        for kind, text in mutants.items():
            assert not verify(facts, text).passed, (kind, text)
        # A share that is another fact of the record is read as the factor's share.
        if "share" in mutants:
            shared = verify(facts, mutants["share"])
            assert ViolationKind.WRONG_CONTEXT in {v.kind for v in shared.violations}
        if "voice" in mutants:
            spoken = verify(facts, mutants["voice"])
            assert {v.kind for v in spoken.violations} == {ViolationKind.WRONG_VOICE}
        # Two factors in one clause, the second's direction wrong: caught as that, for the
        # second factor alone.
        if "joined" in mutants:
            joined = verify(facts, mutants["joined"])
            wrong = {v.kind for v in joined.violations}
            assert ViolationKind.WRONG_DIRECTION in wrong, mutants["joined"]
            second = lead_factors(facts)[1].feature
            assert [
                v.message.split()[1]
                for v in joined.violations
                if v.kind is ViolationKind.WRONG_DIRECTION
            ] == [second], (mutants["joined"], joined.violations)
        # The sentences in their true order, the places their adverbs state reversed:
        # caught as a wrong order alone.
        if "placed" in mutants:
            placed = verify(facts, mutants["placed"])
            assert {v.kind for v in placed.violations} == {ViolationKind.WRONG_ORDER}, (
                mutants["placed"],
                placed.violations,
            )
            placed_any = True
    assert placed_any, "no decision of the eval has two factors of different rank"


def test_rank_accuracy_reads_the_order_a_text_claims_and_can_fail(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, Audience.ANALYST)
    top = facts.top
    first, second = (f"the {f.description} ({f.value_text.split(' (')[0]})" for f in top[:2])
    verbs = ["raised the risk" if f.raises_risk else "lowered the risk" for f in top[:2]]
    in_order = (
        f"Most important was {first}, which {verbs[0]}. Next came {second}, which {verbs[1]}."
    )
    reversed_ = (
        f"Most important was {second}, which {verbs[1]}. Next came {first}, which {verbs[0]}."
    )
    assert claimed_order_accuracy(facts, in_order) == 1.0
    assert claimed_order_accuracy(facts, reversed_) == 0.0
    # A counterfactual names features to say what would have changed, not their weight.
    assert facts.plan is not None and facts.plan.recourse is not None
    counterfactual = counterfactual_sentence(facts, facts.plan.recourse.counterfactuals[0])
    assert claimed_order_accuracy(facts, f"{counterfactual} {in_order}") == 1.0


def test_the_routing_table_meets_its_question_set(
    registry: ModelRegistry, denied_applicant: dict[str, Any]
) -> None:
    facts = facts_for(registry, GBM, denied_applicant, Audience.APPLICANT)
    routing = table_accuracy(facts)
    assert routing["questions"] == len(question_set()) >= 30
    assert routing["accuracy"] >= 0.9, routing["misses"]
    assert len(routing["table_sha256"]) == 64


async def test_the_samples_mode_follows_the_routing_and_every_text_passes(
    registry: ModelRegistry,
) -> None:
    decisions = eval_decisions(registry)[:9]
    ranker = EmbeddingRanker(HashingEmbedder())
    runs = await sample_all(ranker, decisions, registry, seed=5)
    summary = drafting_summary(runs)
    assert summary["fallback_rate"] == 0.0
    assert summary["selected"]["passed_rate"] == 1.0
    assert summary["selected"]["repeated_opener_rate"] == 0.0
    assert summary["routing_end_to_end"]["accuracy"] is not None
    for run in runs:
        assert run["selected_style"]
        assert run["question"] in {q["question"] for q in question_set()}
    page = examples_markdown("samples", runs, [f for f, _ in decisions])
    assert page.count("### applicant") == 3 and "| rank | feature |" in page
    assert runs[0]["selected"]["text"] in page
