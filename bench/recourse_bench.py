"""The recourse search's cost on the demo models: every applicant of the demo data that a
model denies, searched one at a time (``python -m bench.recourse_bench``).

Prints, per model, the denials, how many got a counterfactual (and of how many features
the first one changes), the rows scored per search, and the search time p50 / p95 / max.
"""

from __future__ import annotations

import statistics
import time

from bench.run import MODELS, applicant_rows
from expound.explainers.algorithms import build_explainer
from expound.explainers.decision import decide
from expound.explainers.recourse import search_recourse
from expound.models.registry import serve_model
from expound.models.training import GBM_ID, LOGISTIC_ID


def _quantile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    rows = applicant_rows()
    for model_id in (GBM_ID, LOGISTIC_ID):
        model = serve_model(MODELS / model_id, build_explainer)
        denied = [r for r in rows if decide(model, r, 1e-6).prediction.adverse]
        search_recourse(model, denied[0])  # warm: imports and first-call costs
        times, scored, sizes = [], [], []
        for row in denied:
            started = time.perf_counter()
            recourse = search_recourse(model, row)
            times.append((time.perf_counter() - started) * 1000)
            scored.append(recourse.rows_scored)
            if recourse.counterfactuals:
                sizes.append(len(recourse.counterfactuals[0].changes))
        times.sort()
        print(
            f"{model_id}: {len(denied)} denials, recourse for {len(sizes)} "
            f"(first changes one feature: {sizes.count(1)}, two: {sizes.count(2)}); "
            f"rows scored p50 {statistics.median(scored):.0f} max {max(scored)}; "
            f"search p50 {_quantile(times, 0.5):.1f} ms, p95 {_quantile(times, 0.95):.1f} ms, "
            f"max {times[-1]:.1f} ms"
        )


if __name__ == "__main__":
    main()
