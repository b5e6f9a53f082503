"""Plots of decisions and cohorts, as PNG bytes (for the web pages and ``expound plots``)
or matplotlib figures (for notebooks). Needs the notebook extra.

- :func:`waterfall_png` / :func:`waterfall_figure`: one decision's attributions, from the
  model's base value to its output (shap's waterfall).
- :func:`cohort_pngs` / :func:`cohort_figures`: a cohort (a model and a time range, from the
  archive or a batch result, as a wide frame of :mod:`expound.clients.frames`): beeswarm,
  mean |SHAP| per feature, reason-code frequencies, fallback and gate-rejection rates over
  time.
"""

from expound.plots.cohort import (
    COHORT_PLOTS,
    cohort_figures,
    cohort_pngs,
    rates_over_time,
    reason_frequencies,
    select_cohort,
)
from expound.plots.decision import waterfall_figure, waterfall_png
from expound.plots.render import png_bytes

__all__ = [
    "COHORT_PLOTS",
    "cohort_figures",
    "cohort_pngs",
    "png_bytes",
    "rates_over_time",
    "reason_frequencies",
    "select_cohort",
    "waterfall_figure",
    "waterfall_png",
]
