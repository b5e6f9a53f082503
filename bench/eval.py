"""``make eval``: faithfulness of drafted explanations on fixed demo decisions, and a
mutation suite for the verifier and the ranker. Needs the LLM server of settings
(``EXPOUND_LLM_BASE_URL``, default the embedded vLLM on 127.0.0.1:8000).

Decisions. The demo applicants (data/german_credit.csv) are shuffled with
``random.Random(SEED)``; for each demo model the first ``PER_OUTCOME`` it declines and the
first ``PER_OUTCOME`` it approves are taken, each explained for every audience (default
questions). Drafting is the service's: the same facts, prompts, grammar, generator,
ranker (MiniLM) and sampling settings as ``Settings()``, ``n = 4``, seed per decision,
one decision at a time. Constrained mode runs on all of them; free mode (few-shot prompt,
no grammar) on the first ``FREE_DECISIONS``.

Metrics, after arXiv 2412.10220 (Ichmoukhamedov, Hinns, Martens, "How good is my
story?"). The paper has an extraction LLM read, for each feature a narrative mentions,
the rank, sign and value it states, and scores each against the SHAP table: rank, sign
and value accuracy are the fractions of extracted features whose stated rank, sign and
value match. Here the extraction is the verifier's claim parser (``rankers.gate``), not
an independent LLM, so these figures say what the parser reads; the mutation suite below
is the check on the parser. For one text, over T = the top-4 unprotected features by
|SHAP| (``DecisionFacts.top``) that the text mentions:

- sign accuracy: of the features in T whose direction the text states (``directions``),
  the fraction whose stated direction (raised / lowered the risk) is the sign of their
  SHAP value;
- value accuracy: of the features in T whose value the text states (``stated_values``),
  the fraction stated correctly (numbers within the verifier's tolerance, categories
  exactly);
- rank accuracy: the features in T in the order the text first mentions them; a feature's
  stated rank is its position in that order, its true rank its position when the same
  features are sorted by |SHAP|; the fraction that agree. (A denial discusses the adverse
  features only, so a text that skips a favourable feature of larger |SHAP| is not
  penalised; ``rank_accuracy_absolute`` instead compares the stated position with the
  feature's rank among all of the top 4, as in the paper, where narratives covered every
  top feature.)

A text with no feature in T carrying that kind of claim has no score for it; means are
over the texts that have one, and the count is reported. Also, per text: the share of
the top 4 it mentions; hallucinated features (any UNUSED_FEATURE or PROTECTED_ATTRIBUTE
violation); principal-reason coverage (``Verdict.coverage``, weighted by |contribution|);
words; whether the model stopped on its own or ran out of tokens; plan coverage (the share
of the content plan's factors the text names, a reason's code or text naming its features;
target 1.00 for analyst and compliance); counterfactual validity (of the counterfactuals the
text states, the share that match the recorded ones and, re-scored by the model from the
decision's own values, flip it at the recorded score). Words, plan coverage and top-4
coverage are also reported per audience. The selected text is
the service's answer: the top faithful draft, or the deterministic explanation on
fallback. Fallback rate is the share of decisions answered with the deterministic text.

Mutation suite (``bench/eval_texts.py``): per decision a faithful text from the eval's own
templates (must pass the verifier) and one mutant per type; the verifier's rejection rate
per type, and whether the ranker (MiniLM) puts the faithful text first,
above all its mutants.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from typing import Any

from bench.eval_texts import MUTATIONS, faithful_and_mutants
from bench.run import DATA, MODELS, ROOT, applicant_rows, machine
from expound.domain import Audience
from expound.explainers.algorithms import build_explainer
from expound.explainers.decision import decide
from expound.explainers.facts import DecisionFacts, decision_facts
from expound.explainers.plan import plan_decision
from expound.generators.deterministic import deterministic_explanation
from expound.generators.drafting import Drafter, DraftingConfig, DraftingMode
from expound.generators.openai_compat import OpenAICompatGenerator
from expound.llm.draft import Draft
from expound.models.registry import ModelRegistry, ServedModel
from expound.pipeline.assembly import build_ranker
from expound.pipeline.selection import select
from expound.rankers.base import Ranker
from expound.rankers.gate import Verdict, ViolationKind, verify
from expound.settings import Settings

RESULTS = ROOT / "bench" / "results" / "eval.json"
SEED = 20241213
PER_OUTCOME = 4
MODEL_IDS = ("german-credit-gbm", "german-credit-logistic")
CANDIDATES = 4
FREE_DECISIONS = 6
HALLUCINATION = {ViolationKind.UNUSED_FEATURE, ViolationKind.PROTECTED_ATTRIBUTE}
TARGETS = {
    "sign_accuracy": ">= 1.00",
    "value_accuracy": ">= 0.99",
    "rank_accuracy": ">= 0.95",
    "hallucinated_rate": "= 0",
    "coverage": ">= 0.9",
    "fallback_rate": "< 0.05 (constrained)",
    "plan_coverage": "= 1.00 (analyst, compliance)",
    "counterfactual_validity": "= 1.00",
}


def eval_decisions(registry: ModelRegistry) -> list[tuple[DecisionFacts, str]]:
    """The fixed decisions: (facts, deterministic text) per applicant, model and audience."""
    rows = applicant_rows()
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    decisions = []
    for model_id in MODEL_IDS:
        model = registry.get(model_id)
        taken = {True: 0, False: 0}
        for index in order:
            decision = decide(model, rows[index], 1e-6)
            adverse = decision.prediction.adverse
            if taken[adverse] >= PER_OUTCOME:
                continue
            taken[adverse] += 1
            for audience in Audience:
                plan = plan_decision(model, rows[index], decision, audience)
                facts = decision_facts(model.manifest, decision, audience, "", plan)
                text = deterministic_explanation(facts)
                decisions.append((facts, text))
            if all(count >= PER_OUTCOME for count in taken.values()):
                break
    return decisions


def plan_coverage(facts: DecisionFacts, text: str, mentioned: list[str]) -> float | None:
    """The share of the plan's factors a text names (a reason's code or text names the
    reason's features); None without a plan."""
    if facts.plan is None or not facts.plan.factors:
        return None
    lowered = text.lower()
    covered = set(mentioned)
    for reason in facts.reasons:
        if reason.code.lower() in lowered or reason.text.lower() in lowered:
            covered |= set(reason.features)
    return sum(p.feature in covered for p in facts.plan.factors) / len(facts.plan.factors)


def counterfactual_validity(
    facts: DecisionFacts, verdict: Verdict, model: ServedModel | None
) -> float | None:
    """Of the counterfactuals a text states, the share that match the record and, re-scored
    now by the model from the decision's own values, flip it at the recorded score.
    None when the text states none."""
    unmatched = sum(v.kind is ViolationKind.WRONG_COUNTERFACTUAL for v in verdict.violations)
    total = unmatched + len(verdict.counterfactuals)
    if total == 0:
        return None
    if model is None:
        # Matched to the record, which holds only counterfactuals re-scored at plan time.
        return len(verdict.counterfactuals) / total
    row = {item.feature: item.value for item in facts.attributions.items}
    valid = 0
    for counterfactual in verdict.counterfactuals:
        changed = row | {c.feature: c.after for c in counterfactual.changes}
        prediction = decide(model, changed, 1e-6).prediction
        rescored_ok = abs(prediction.score - counterfactual.score) <= 1e-9
        valid += (not prediction.adverse) and rescored_ok
    return valid / total


def text_metrics(
    facts: DecisionFacts, text: str, model: ServedModel | None = None
) -> dict[str, Any]:
    """The claims of one text scored against its decision (see the module docstring).

    ``model`` re-scores the counterfactuals the text states (without it, a counterfactual
    is valid when it matches the record, re-scored when the plan was made)."""
    verdict = verify(facts, text)
    top = [f.feature for f in facts.top]
    mentioned = [name for name in verdict.mentioned if name in top]
    signs = [
        verdict.directions[name] == facts.factors[name].raises_risk
        for name in mentioned
        if name in verdict.directions
    ]
    values = [verdict.stated_values[name] for name in mentioned if name in verdict.stated_values]
    by_shap = sorted(mentioned, key=lambda name: facts.factors[name].rank)
    ranks = [name == truth for name, truth in zip(mentioned, by_shap, strict=True)]
    absolute = [top.index(name) == position for position, name in enumerate(mentioned)]

    def share(hits: list[bool]) -> float | None:
        return sum(hits) / len(hits) if hits else None

    return {
        "passed": verdict.passed,
        "sign_accuracy": share(signs),
        "value_accuracy": share(values),
        "rank_accuracy": share(ranks),
        "rank_accuracy_absolute": share(absolute),
        "top4_mentioned": len(mentioned) / max(1, len(top)),
        "plan_coverage": plan_coverage(facts, text, verdict.mentioned),
        "counterfactual_validity": counterfactual_validity(facts, verdict, model),
        "hallucinated": any(v.kind in HALLUCINATION for v in verdict.violations),
        "coverage": verdict.coverage,
        "words": verdict.words,
        "violations": [str(v) for v in verdict.violations],
    }


SCORED_KEYS = (
    "sign_accuracy",
    "value_accuracy",
    "rank_accuracy",
    "rank_accuracy_absolute",
    "plan_coverage",
    "counterfactual_validity",
)


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over texts (each metric over the texts that have it, with their count).

    A mode that produced no texts (every call failed, or none was run) has every figure
    None, never a division by zero: the run is reported, not lost.
    """
    summary: dict[str, Any] = {"texts": len(rows)}
    for key in SCORED_KEYS:
        scored = [r[key] for r in rows if r.get(key) is not None]
        summary[key] = _mean(scored)
        summary[f"{key}_texts"] = len(scored)
    for key in ("top4_mentioned", "coverage", "words"):
        summary[key] = _mean([r[key] for r in rows])
    summary["hallucinated_rate"] = _mean([float(r["hallucinated"]) for r in rows])
    summary["passed_rate"] = _mean([float(r["passed"]) for r in rows])
    truncated = [r for r in rows if "finish_reason" in r]
    if truncated:
        summary["truncated_rate"] = round(
            sum(r["finish_reason"] == "length" for r in truncated) / len(truncated), 4
        )
    return summary


async def _draft_all(
    settings: Settings,
    ranker: Ranker,
    mode: DraftingMode,
    decisions: list[tuple[DecisionFacts, str]],
    registry: ModelRegistry | None = None,
) -> list[dict[str, Any]]:
    generator = OpenAICompatGenerator(
        settings.llm_base_url, settings.llm_model, api_key=settings.llm_api_key
    )
    config = DraftingConfig(
        mode=mode,
        decoding=settings.llm_decoding,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        timeout_s=settings.llm_timeout_s,
    )
    drafter = Drafter(generator, config)
    out = []
    try:
        for number, (facts, fallback_text) in enumerate(decisions):
            model = registry.get(facts.model_id) if registry is not None else None
            started = time.perf_counter()
            drafting = await drafter.draft(facts, CANDIDATES, settings.default_seed + number, None)
            outcome = select(drafting, await ranker.rank(facts, drafting.drafts), ranker.name)
            seconds = time.perf_counter() - started
            finish = {d.text: d.finish_reason for d in outcome.record.drafts}
            candidates = []
            for candidate in outcome.candidates:
                row = text_metrics(facts, candidate.text, model)
                row |= {"text": candidate.text, "finish_reason": finish.get(candidate.text, "")}
                candidates.append(row)
            selected_text = outcome.selected.text if outcome.selected else fallback_text
            selected = text_metrics(facts, selected_text, model) | {"text": selected_text}
            if outcome.selected:
                selected["finish_reason"] = finish.get(selected_text, "")
            out.append(
                {
                    "model_id": facts.model_id,
                    "decision": facts.prediction.decision,
                    "audience": facts.audience.value,
                    "fallback_reason": outcome.fallback_reason,
                    "seconds": round(seconds, 3),
                    "selected": selected,
                    "candidates": candidates,
                }
            )
            print(
                f"  {mode} {number + 1}/{len(decisions)} {facts.model_id} "
                f"{facts.prediction.decision} {facts.audience.value}: {seconds:.1f} s "
                f"{outcome.fallback_reason or 'drafted'}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        await generator.aclose()
    return out


def drafting_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Selected and all-candidate figures of one drafting mode."""
    fallbacks = Counter(run["fallback_reason"] for run in runs if run["fallback_reason"])
    drafted = [run["selected"] for run in runs if not run["fallback_reason"]]
    return {
        "decisions": len(runs),
        "fallback_rate": round(sum(fallbacks.values()) / len(runs), 4) if runs else None,
        "fallback_reasons": dict(fallbacks),
        "seconds_per_decision_p50": (
            round(statistics.median(r["seconds"] for r in runs), 3) if runs else None
        ),
        "selected": summarise([run["selected"] for run in runs]),
        "selected_drafted_only": summarise(drafted) if drafted else None,
        "candidates": summarise([c for run in runs for c in run["candidates"]]),
        "selected_by_audience": {
            audience.value: summarise([r["selected"] for r in runs if r["audience"] == audience])
            for audience in Audience
            if any(r["audience"] == audience for r in runs)
        },
    }


async def mutation_suite(
    ranker: Ranker, decisions: list[tuple[DecisionFacts, str]]
) -> dict[str, Any]:
    """Rejection rate per mutation type, and the ranker's order of faithful vs mutants."""
    rejected: dict[str, list[bool]] = {kind: [] for kind in MUTATIONS}
    missed: list[dict[str, str]] = []
    faithful_failed: list[dict[str, Any]] = []
    ranked_first: list[bool] = []
    scored_first: list[bool] = []
    kinds: dict[str, Counter[str]] = {kind: Counter() for kind in MUTATIONS}
    for variant, (facts, _) in enumerate(decisions):
        faithful, mutants = faithful_and_mutants(facts, variant)
        verdict = verify(facts, faithful)
        if not verdict.passed:
            faithful_failed.append(
                {"text": faithful, "violations": [str(v) for v in verdict.violations]}
            )
        for kind, text in mutants.items():
            mutant_verdict = verify(facts, text)
            rejected[kind].append(not mutant_verdict.passed)
            kinds[kind].update(v.kind.value for v in mutant_verdict.violations)
            if mutant_verdict.passed:
                missed.append({"type": kind, "model_id": facts.model_id, "text": text})
        drafts = [Draft(text=faithful, index=0)]
        drafts += [Draft(text=t, index=i) for i, t in enumerate(mutants.values(), start=1)]
        ranked = await ranker.rank(facts, drafts)
        ranked_first.append(ranked[0].draft.index == 0)
        if any(r.verdict.passed for r in ranked if r.draft.index != 0):
            # The gate let a mutant through: only the scores can keep it below.
            scored_first.append(ranked[0].draft.index == 0)
    return {
        "decisions": len(decisions),
        "faithful_pass_rate": round(1 - len(faithful_failed) / len(decisions), 4),
        "faithful_failed": faithful_failed,
        "rejection_rate": {
            kind: round(sum(hits) / len(hits), 4) if hits else None
            for kind, hits in rejected.items()
        },
        "mutants": {kind: len(hits) for kind, hits in rejected.items()},
        "violation_kinds": {kind: dict(counter) for kind, counter in kinds.items()},
        "missed": missed,
        "ranker_faithful_first_rate": round(sum(ranked_first) / len(ranked_first), 4),
        "decisions_with_a_passing_mutant": len(scored_first),
        "ranker_faithful_first_rate_there": (
            round(sum(scored_first) / len(scored_first), 4) if scored_first else None
        ),
    }


def _row(metric: str, value: Any, target: str = "") -> dict[str, Any]:
    return {"metric": metric, "value": value, "target": target}


def table(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The printed figures."""
    rows = []
    for mode in ("constrained", "free"):
        section = results[mode]
        rows.append(
            _row(
                f"{mode}: fallback rate ({section['decisions']} decisions)",
                section["fallback_rate"],
                TARGETS["fallback_rate"] if mode == "constrained" else "",
            )
        )
        for who in ("selected", "candidates"):
            summary = section[who]
            for key in ("sign_accuracy", "value_accuracy", "rank_accuracy"):
                rows.append(
                    _row(
                        f"{mode}: {who} {key} (n={summary[f'{key}_texts']})",
                        summary[key],
                        TARGETS[key] if who == "selected" else "",
                    )
                )
            for key in ("rank_accuracy_absolute", "top4_mentioned", "passed_rate"):
                rows.append(_row(f"{mode}: {who} {key}", summary[key]))
            for key in ("plan_coverage", "counterfactual_validity"):
                rows.append(
                    _row(
                        f"{mode}: {who} {key} (n={summary[f'{key}_texts']})",
                        summary[key],
                        TARGETS[key] if who == "selected" else "",
                    )
                )
            for key in ("hallucinated_rate", "coverage"):
                target = TARGETS[key] if who == "selected" else ""
                rows.append(_row(f"{mode}: {who} {key}", summary[key], target))
            rows.append(_row(f"{mode}: {who} words", summary["words"]))
            if "truncated_rate" in summary:
                rows.append(_row(f"{mode}: {who} ran out of tokens", summary["truncated_rate"]))
        for audience, by_audience in section["selected_by_audience"].items():
            planned = audience != Audience.APPLICANT.value
            rows.append(_row(f"{mode}: selected words, {audience.lower()}", by_audience["words"]))
            rows.append(
                _row(
                    f"{mode}: selected plan coverage, {audience.lower()}",
                    by_audience["plan_coverage"],
                    "= 1.00" if planned else "",
                )
            )
            rows.append(
                _row(
                    f"{mode}: selected top-4 coverage, {audience.lower()}",
                    by_audience["top4_mentioned"],
                    ">= 0.95" if planned else "",
                )
            )
    suite = results["mutations"]
    rows.append(_row("mutations: faithful texts pass", suite["faithful_pass_rate"], "1.00"))
    for kind, rate in suite["rejection_rate"].items():
        rows.append(_row(f"mutations: rejected {kind} (n={suite['mutants'][kind]})", rate, "1.00"))
    rows.append(
        _row("mutations: ranker puts faithful first", suite["ranker_faithful_first_rate"], "1.00")
    )
    rows.append(
        _row(
            "mutations: ... where a mutant passed the gate "
            f"(n={suite['decisions_with_a_passing_mutant']})",
            suite["ranker_faithful_first_rate_there"],
        )
    )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    """One line per figure."""
    width = max(len(r["metric"]) for r in rows)
    print(f"{'metric':<{width}}  {'value':>8}  target")
    for row in rows:
        value = row["value"]
        shown = "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else value
        print(f"{row['metric']:<{width}}  {shown!s:>8}  {row['target']}".rstrip())


async def _llm_healthy(settings: Settings) -> bool:
    generator = OpenAICompatGenerator(settings.llm_base_url, settings.llm_model)
    try:
        return await generator.check_health()
    finally:
        await generator.aclose()


def main() -> None:
    if not (MODELS / MODEL_IDS[0] / "manifest.json").is_file():
        raise SystemExit(f"no demo models under {MODELS}: run `make models` first")
    started = time.perf_counter()
    settings = Settings()
    if not asyncio.run(_llm_healthy(settings)):
        raise SystemExit(
            f"the LLM server at {settings.llm_base_url} does not answer GET /health: start it "
            "(scripts/serve_vllm.sh) or set EXPOUND_LLM_BASE_URL; no figures were measured"
        )
    registry = ModelRegistry.from_directory(MODELS, build_explainer)
    decisions = eval_decisions(registry)
    ranker = build_ranker(settings)
    results: dict[str, Any] = {
        "machine": machine(),
        "config": {
            "data": str(DATA.relative_to(ROOT)),
            "seed": SEED,
            "decisions": len(decisions),
            "per_outcome_per_model": PER_OUTCOME,
            "models": list(MODEL_IDS),
            "candidates": CANDIDATES,
            "free_decisions": FREE_DECISIONS,
            "llm_base_url": settings.llm_base_url,
            "llm_model": settings.llm_model,
            "max_tokens": settings.llm_max_tokens,
            "temperature": settings.llm_temperature,
            "timeout_s": settings.llm_timeout_s,
            "ranker": ranker.name,
        },
    }
    print(f"mutation suite over {len(decisions)} decisions ...", file=sys.stderr, flush=True)
    results["mutations"] = asyncio.run(mutation_suite(ranker, decisions))
    runs = {}
    passes: list[tuple[DraftingMode, list[tuple[DecisionFacts, str]]]] = [
        ("constrained", decisions),
        ("free", decisions[:FREE_DECISIONS]),
    ]
    for mode, chosen in passes:
        print(f"drafting ({mode}) ...", file=sys.stderr, flush=True)
        runs[mode] = asyncio.run(_draft_all(settings, ranker, mode, chosen, registry))
        results[mode] = drafting_summary(runs[mode])
    results["runs"] = runs
    results["machine"]["load_average_after"] = list(os.getloadavg())
    results["seconds"] = round(time.perf_counter() - started, 1)
    rows = table(results)
    results["table"] = rows
    print_table(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)} in {results['seconds']} s")


if __name__ == "__main__":
    main()
