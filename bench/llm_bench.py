"""The ``llm`` section of ``make bench``: drafting with the real LLM server, and ranking.

Against the LLM server of settings (``EXPOUND_LLM_BASE_URL``; default the embedded vLLM
on 127.0.0.1:8000); if it does not answer ``GET /health`` the section says so and
measures nothing. All in one run, through the service's own client
(``OpenAICompatGenerator``), on one real decision (the first applicant of the demo data
the tree model declines, applicant audience) with its constrained prompt and grammar and
the settings' sampling (``max_tokens``, temperature):

- ``drafting``: for N = 1, 2, 4, 8, the wall time of ONE request for N candidates
  (``n = N``) against N sequential single-candidate requests (``n = 1``, seeds
  seed..seed+N-1), interleaved, ``REPEATS`` times after a warm-up request (which compiles
  the grammar and the logprob kernels); completion tokens per second. Target: N = 4 in
  one request <= 1.6x the time of N = 1 (medians over the repeats).
- ``explain``: end-to-end Explain latency with drafting (constrained, N = 4, 30 s
  deadlines) over real gRPC sockets, jump-forward decoding against whole-grammar decoding
  side by side (:func:`_compare`), applicant and analyst audiences, one call at a time
  (``EXPLAIN_CALLS``) and ``CONCURRENT`` at once (``CONCURRENT_ROUNDS``), on declined
  applicants after one warm-up call each; client-measured p50/p95 (with so few calls p95
  is close to the maximum), fallback rate, and the LLM queue wait from the answers'
  timings. Targets (jump, one at a time): applicant p50 <= 3 s, analyst <= 5 s; no
  fallback at 4 concurrent. ``python -m bench.llm_bench explain`` runs only this part.
- ``ranking``: ``EmbeddingRanker.rank_sync`` (verification + MiniLM relevance + scores) on
  the 4 candidates drafted above, no LLM call (the drafts' own log-probabilities give
  fluency), ``RANK_RUNS`` timed runs with the sentence cache warm (same drafts again: a
  lower bound) and cold (empty cache: an upper bound); verification alone and MiniLM
  over whole texts for reference. Target: p50 <= 50 ms.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.run import MODELS, ROOT, TREE_MODEL, applicant_rows
from expound.domain import Audience
from expound.explainers.algorithms import build_explainer
from expound.explainers.decision import decide
from expound.explainers.facts import DecisionFacts, decision_facts
from expound.explainers.plan import plan_decision
from expound.generators.base import DraftRequest, Drafts
from expound.generators.grammar import build_grammar
from expound.generators.openai_compat import OpenAICompatGenerator
from expound.models.registry import ModelRegistry
from expound.rankers.embedding import EmbeddingRanker, MiniLMEmbedder, SentenceCachedEmbedder
from expound.rankers.gate import verify
from expound.settings import Settings

N_VALUES = (1, 2, 4, 8)
REPEATS = 3
SEED = 11
TARGET_RATIO_N4 = 1.6
EXPLAIN_CALLS = 8
CONCURRENT = 4
CONCURRENT_ROUNDS = 2
DEADLINE_S = 30.0
TARGET_P50_S = {"APPLICANT": 3.0, "ANALYST": 5.0}
RANK_WARMUP = 5
RANK_RUNS = 50
NEW_DECISIONS_WARM = 20
TARGET_RANK_MS = 50.0
REQUEST_TIMEOUT_S = 120.0


def declined_decision(registry: ModelRegistry) -> tuple[DecisionFacts, list[dict[str, Any]]]:
    """The first declined applicant of the demo data (tree model), and the other rows."""
    model = registry.get(TREE_MODEL)
    rows = applicant_rows()
    for index, features in enumerate(rows):
        decision = decide(model, features, 1e-6)
        if decision.prediction.adverse:
            plan = plan_decision(model, features, decision, Audience.APPLICANT)
            facts = decision_facts(model.manifest, decision, Audience.APPLICANT, "", plan)
            return facts, rows[index + 1 :]
    raise RuntimeError("no declined applicant in the demo data")


async def _timed(generator: OpenAICompatGenerator, request: DraftRequest) -> tuple[float, Drafts]:
    started = time.perf_counter()
    drafts = await generator.generate(request)
    return time.perf_counter() - started, drafts


async def _drafting(
    generator: OpenAICompatGenerator, settings: Settings, facts: DecisionFacts
) -> tuple[dict[str, Any], Drafts]:
    from expound.generators.prompting import constrained_prompt

    prompt, template = constrained_prompt(facts)
    grammar = build_grammar(facts).to_ebnf()

    def request(n: int, seed: int) -> DraftRequest:
        return DraftRequest(
            prompt=prompt,
            n=n,
            drafting_seed=seed,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            grammar=grammar,
            timeout_s=REQUEST_TIMEOUT_S,
        )

    warmup_s, _ = await _timed(generator, request(4, SEED))
    samples: dict[int, dict[str, list[float]]] = {
        n: {"one_s": [], "one_tokens": [], "seq_s": [], "seq_tokens": []} for n in N_VALUES
    }
    kept: Drafts | None = None
    for _ in range(REPEATS):
        for n in N_VALUES:
            seconds, drafts = await _timed(generator, request(n, SEED))
            samples[n]["one_s"].append(seconds)
            samples[n]["one_tokens"].append(drafts.completion_tokens)
            if n == 4:
                kept = drafts
            total_s, tokens = 0.0, 0
            for i in range(n):
                seconds, drafts = await _timed(generator, request(1, SEED + i))
                total_s += seconds
                tokens += drafts.completion_tokens
            samples[n]["seq_s"].append(total_s)
            samples[n]["seq_tokens"].append(tokens)
    assert kept is not None
    runs: dict[int, dict[str, Any]] = {}
    for n, sample in samples.items():
        # Medians: the cores are shared, and one slow request should not set the ratio.
        one_s = statistics.median(sample["one_s"])
        seq_s = statistics.median(sample["seq_s"])
        runs[n] = {
            "one_request_s": [round(s, 3) for s in sample["one_s"]],
            "sequential_s": [round(s, 3) for s in sample["seq_s"]],
            "one_request_median_s": round(one_s, 3),
            "sequential_median_s": round(seq_s, 3),
            "one_request_tokens_per_s": round(sum(sample["one_tokens"]) / sum(sample["one_s"]), 1),
            "sequential_tokens_per_s": round(sum(sample["seq_tokens"]) / sum(sample["seq_s"]), 1),
            "completion_tokens_one_request": sample["one_tokens"],
            "completion_tokens_sequential": sample["seq_tokens"],
        }
    base = runs[1]["one_request_median_s"]
    for run in runs.values():
        run["one_request_vs_n1"] = round(run["one_request_median_s"] / base, 3)
        run["sequential_vs_n1"] = round(run["sequential_median_s"] / base, 3)
    return {
        "prompt_template": template.template_id,
        "grammar_rules": len(build_grammar(facts).rules),
        "max_tokens": settings.llm_max_tokens,
        "temperature": settings.llm_temperature,
        "repeats": REPEATS,
        "warmup_s": round(warmup_s, 3),
        "by_n": runs,
        "n4_vs_n1": runs[4]["one_request_vs_n1"],
        "target_n4_vs_n1": TARGET_RATIO_N4,
        "meets_target": runs[4]["one_request_vs_n1"] <= TARGET_RATIO_N4,
    }, kept


def _new_decisions(model: MiniLMEmbedder, weights: dict[str, dict[str, float]]) -> list[float]:
    """Steady state: four candidates of a decision never seen, cache warmed by others.

    Candidates are sampled from each decision's grammar (what constrained drafting can
    return), so the run needs no LLM time; only the ranking is timed.
    """
    import random

    from expound.llm.draft import Draft

    registry = ModelRegistry.from_directory(MODELS, build_explainer)
    model_entry = registry.get(TREE_MODEL)
    rng = random.Random(20241213)
    ranker = EmbeddingRanker(SentenceCachedEmbedder(model), weights)
    times: list[float] = []
    for index, features in enumerate(applicant_rows()[200 : 200 + NEW_DECISIONS_WARM + RANK_RUNS]):
        audience = list(Audience)[index % 3]
        decision = decide(model_entry, features, 1e-6)
        plan = plan_decision(model_entry, features, decision, audience)
        facts = decision_facts(model_entry.manifest, decision, audience, "", plan)
        grammar = build_grammar(facts)
        candidates = [Draft(text=grammar.sample(rng), index=i) for i in range(4)]
        started = time.perf_counter()
        ranker.rank_sync(facts, candidates)
        if index >= NEW_DECISIONS_WARM:
            times.append((time.perf_counter() - started) * 1000)
    return times


def _ranking(settings: Settings, facts: DecisionFacts, drafts: Drafts) -> dict[str, Any]:
    # The ranker as build_ranker makes it (MiniLM behind a sentence cache), with the
    # model held here so that each cold run can get an empty cache around the same one.
    if settings.ranker_embedder != "minilm":
        return {"skipped": f"ranker_embedder is {settings.ranker_embedder!r}, not minilm"}
    model = MiniLMEmbedder()
    weights = settings.rank_weights
    candidates = drafts.drafts[:4]
    texts = [d.text for d in candidates]
    # warm: the same drafts again, every sentence cached (a lower bound); cold: an empty
    # cache each run, every sentence through MiniLM (an upper bound). A new decision lies
    # between: its phrase-bank sentences are cached, those naming its values are not.
    samples: dict[str, list[float]] = {"warm": [], "cold": [], "verify": [], "minilm_whole": []}
    warm = EmbeddingRanker(SentenceCachedEmbedder(model), weights)
    for _ in range(RANK_WARMUP):
        warm.rank_sync(facts, candidates)
    for _ in range(RANK_RUNS):
        cold = EmbeddingRanker(SentenceCachedEmbedder(model), weights)
        for name, ranker in (("warm", warm), ("cold", cold)):
            started = time.perf_counter()
            ranker.rank_sync(facts, candidates)
            samples[name].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        for text in texts:
            verify(facts, text)
        samples["verify"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        model.embed([facts.question or "question", "reasons", *texts])
        samples["minilm_whole"].append((time.perf_counter() - started) * 1000)
    samples["new_decision"] = _new_decisions(model, weights)
    stats = {
        name: {
            "p50_ms": round(float(np.percentile(values, 50)), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2),
        }
        for name, values in samples.items()
    }
    return {
        "ranker": warm.name,
        "candidates": len(candidates),
        "runs": RANK_RUNS,
        "rank_sync": {
            "warm_cache": stats["warm"],
            "cold_cache": stats["cold"],
            "new_decision": stats["new_decision"],
        },
        "parts": {
            "verify_4_candidates": stats["verify"],
            "minilm_whole_texts_uncached": stats["minilm_whole"],
        },
        "target_ms": TARGET_RANK_MS,
        "meets_target_cold": stats["cold"]["p50_ms"] <= TARGET_RANK_MS,
        "meets_target_warm": stats["warm"]["p50_ms"] <= TARGET_RANK_MS,
        "meets_target_new_decision": stats["new_decision"]["p50_ms"] <= TARGET_RANK_MS,
    }


def _decisions(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Applicants the tree model declines (the explanations that matter most), split by
    audience so that no decision is explained twice for one audience."""
    registry = ModelRegistry.from_directory(MODELS, build_explainer)
    model = registry.get(TREE_MODEL)
    declined = [f for f in rows if decide(model, f, 1e-6).prediction.adverse]
    need = EXPLAIN_CALLS + 1 + CONCURRENT * CONCURRENT_ROUNDS
    return {
        audience: declined[i * need : (i + 1) * need]
        for i, audience in enumerate(("APPLICANT", "ANALYST"))
    }


async def _compare(settings: Settings, rows: list[dict[str, Any]], workdir: Path) -> dict[str, Any]:
    """Explain with drafting, jump-forward vs whole-grammar decoding, side by side.

    Two servers in this process (one per decoding, each with its own archive), called in
    turn: the same decision goes to one and then the other, one call at a time, then
    ``CONCURRENT`` calls at once on one and then the other; 30 s deadlines, n = 4.
    """
    import grpc

    from expound.clients.client import explain_request
    from expound.server.app import running_server
    from expound.v1 import explain_pb2 as pb
    from expound.v1 import explain_pb2_grpc

    def configured(decoding: str) -> Settings:
        folder = workdir / decoding
        folder.mkdir()
        return settings.model_copy(
            update={
                "port": 0,
                "metrics_port": 0,
                "model_dir": MODELS,
                "archive_path": folder / "archive.sqlite3",
                "signing_key_path": folder / "signing-key.pem",
                "grace_seconds": 0.5,
                "llm_mode": "constrained",
                "llm_decoding": decoding,
                # Each server is warmed up by one call below, in turn; a startup warm-up
                # of both at once could still run into the first measured call.
                "llm_warmup": False,
            }
        )

    audiences = {"APPLICANT": pb.APPLICANT, "ANALYST": pb.ANALYST}
    calls: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    async with (
        running_server(configured("jump")) as jump,
        running_server(configured("grammar")) as grammar,
        grpc.aio.insecure_channel(f"127.0.0.1:{jump.port}") as jump_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{grammar.port}") as grammar_channel,
    ):
        stubs = {
            "jump": explain_pb2_grpc.ExplainServiceStub(jump_channel),
            "grammar": explain_pb2_grpc.ExplainServiceStub(grammar_channel),
        }

        async def one(decoding: str, audience: str, features: dict[str, Any]) -> dict[str, Any]:
            request = explain_request(
                TREE_MODEL, features, audience=audiences[audience], num_candidates=4
            )
            started = time.perf_counter()
            try:
                response = await stubs[decoding].Explain(request, timeout=DEADLINE_S)
            except grpc.aio.AioRpcError as error:
                return {"seconds": time.perf_counter() - started, "error": error.code().name}
            seconds = time.perf_counter() - started
            stages = {t.stage: round(t.millis, 1) for t in response.timings}
            return {
                "seconds": round(seconds, 3),
                "fallback_reason": response.fallback_reason,
                "stages_ms": {k: stages[k] for k in ("draft", "llm_queue", "rank") if k in stages},
            }

        for audience, decisions in _decisions(rows).items():
            warm, sequential = decisions[0], decisions[1 : EXPLAIN_CALLS + 1]
            batches = [
                decisions[
                    EXPLAIN_CALLS + 1 + r * CONCURRENT : EXPLAIN_CALLS + 1 + (r + 1) * CONCURRENT
                ]
                for r in range(CONCURRENT_ROUNDS)
            ]
            for decoding in stubs:  # warm-up: MiniLM, grammar compilation, token counts
                await one(decoding, audience, warm)
            for features in sequential:
                for decoding in stubs:
                    calls.setdefault((decoding, audience, 1), []).append(
                        await one(decoding, audience, features)
                    )
            for batch in batches:
                for decoding in stubs:
                    answers = await asyncio.gather(*(one(decoding, audience, f) for f in batch))
                    calls.setdefault((decoding, audience, CONCURRENT), []).extend(answers)
    runs = []
    for (decoding, audience, concurrency), answered in calls.items():
        totals = [c["seconds"] for c in answered]
        fallbacks = sum(bool(c.get("fallback_reason") or c.get("error")) for c in answered)
        queue = [c.get("stages_ms", {}).get("llm_queue", 0.0) for c in answered]
        runs.append(
            {
                "decoding": decoding,
                "audience": audience,
                "concurrency": concurrency,
                "calls": len(answered),
                "p50_s": round(float(np.percentile(totals, 50)), 3),
                "p95_s": round(float(np.percentile(totals, 95)), 3),
                "fallback_rate": round(fallbacks / len(answered), 3),
                "llm_queue_p50_ms": round(float(np.percentile(queue, 50)), 1),
                "per_call": answered,
            }
        )
    return {
        "transport": "grpc.aio over 127.0.0.1, clients and servers in one process",
        "deadline_s": DEADLINE_S,
        "candidates": 4,
        "targets_p50_s": TARGET_P50_S,
        "runs": runs,
    }


def explain_table(explain: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparison's rows: p50, p95 and fallback rate per decoding, audience and load."""
    table: list[dict[str, Any]] = []
    for run in explain["runs"]:
        name = (
            f"llm: Explain {run['audience'].lower()} {run['decoding']} "
            f"x{run['concurrency']} ({run['calls']} calls)"
        )
        target = TARGET_P50_S[run["audience"]] if run["decoding"] == "jump" else None
        table += [
            {
                "metric": f"{name} p50",
                "value": run["p50_s"],
                "unit": "s",
                "target": f"<= {target:g} s" if target and run["concurrency"] == 1 else "",
            },
            {"metric": f"{name} p95", "value": run["p95_s"], "unit": "s"},
            {
                "metric": f"{name} fallback rate",
                "value": run["fallback_rate"],
                "target": "0" if run["decoding"] == "jump" else "",
            },
        ]
    return table


async def _healthy(generator: OpenAICompatGenerator) -> bool:
    return await generator.check_health()


def run() -> dict[str, Any]:
    """The LLM section: drafting N in one request vs sequential, Explain, ranking."""
    settings = Settings()
    load_before = list(os.getloadavg())
    generator = OpenAICompatGenerator(settings.llm_base_url, settings.llm_model)

    async def drafting() -> tuple[bool, dict[str, Any] | None, Drafts | None]:
        try:
            if not await _healthy(generator):
                return False, None, None
            result, drafts = await _drafting(generator, settings, facts)
            return True, result, drafts
        finally:
            await generator.aclose()

    registry = ModelRegistry.from_directory(MODELS, build_explainer)
    facts, other_rows = declined_decision(registry)
    reachable, result, drafts = asyncio.run(drafting())
    if not reachable or result is None or drafts is None:
        message = f"LLM server not reachable at {settings.llm_base_url}: nothing measured"
        return {
            "llm_reachable": False,
            "base_url": settings.llm_base_url,
            "table": [{"metric": "llm: server", "value": message}],
        }
    ranking = _ranking(settings, facts, drafts)
    (ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "var", prefix="bench-llm-") as workdir:
        explain = asyncio.run(_compare(settings, other_rows, Path(workdir)))
    table: list[dict[str, Any]] = []
    for n, run_n in result["by_n"].items():
        table.append(
            {
                "metric": f"llm: n={n} in one request",
                "value": run_n["one_request_median_s"],
                "unit": "s",
                "target": f"<= {TARGET_RATIO_N4}x n=1" if n == 4 else "",
            }
        )
        table.append(
            {"metric": f"llm: {n} sequential n=1 requests", "value": run_n["sequential_median_s"]}
        )
        table[-1]["unit"] = "s"
        table.append(
            {"metric": f"llm: n={n} one request / n=1", "value": run_n["one_request_vs_n1"]}
        )
        table[-1]["unit"] = "x"
        table.append(
            {
                "metric": f"llm: n={n} tokens/s (one request)",
                "value": run_n["one_request_tokens_per_s"],
                "unit": "tok/s",
            }
        )
    table += explain_table(explain)
    for cache in ("cold_cache", "new_decision", "warm_cache"):
        for q in ("p50", "p95"):
            table.append(
                {
                    "metric": f"ranking: rank_sync 4 candidates, {cache.replace('_', ' ')} {q}",
                    "value": ranking["rank_sync"][cache][f"{q}_ms"],
                    "unit": "ms",
                    "target": f"<= {TARGET_RANK_MS:g} ms" if q == "p50" else "",
                }
            )
    return {
        "llm_reachable": True,
        "base_url": settings.llm_base_url,
        "model": settings.llm_model,
        "decision": {"model_id": facts.model_id, "audience": facts.audience.value},
        "drafting": result,
        "explain": explain,
        "ranking": ranking,
        # Other processes (other LLM servers, test runs) share the cores and slow every figure.
        "load_average_1_5_15": {"before": load_before, "after": list(os.getloadavg())},
        "table": table,
    }


def run_explain() -> dict[str, Any]:
    """Only the Explain comparison (``python -m bench.llm_bench explain``)."""
    settings = Settings()
    load_before = list(os.getloadavg())
    rows = applicant_rows()
    (ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "var", prefix="bench-llm-") as workdir:
        explain = asyncio.run(_compare(settings, rows, Path(workdir)))
    explain["load_average_1_5_15"] = {"before": load_before, "after": list(os.getloadavg())}
    explain["table"] = explain_table(explain)
    return explain


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run_explain() if sys.argv[1:] == ["explain"] else run(), indent=2))
