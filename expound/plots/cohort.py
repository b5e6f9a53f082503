"""A cohort's plots: many decisions of one model over a time range.

The cohort is a wide frame (:mod:`expound.clients.frames`) from the archive
(``records_to_frame(client.iter_records(model_id=..., since=..., until=...))``) or from an
explain-batch result (``read_frame(out)``), narrowed by :func:`select_cohort`.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from matplotlib.figure import Figure

from expound.clients.frames import frame_to_explanation
from expound.plots.render import png_bytes, shap_figure

__all__ = [
    "COHORT_PLOTS",
    "cohort_figures",
    "cohort_pngs",
    "rates_over_time",
    "reason_frequencies",
    "select_cohort",
]

# The plots of a cohort, by the name their PNG files and the web pages use.
COHORT_PLOTS = ("beeswarm", "mean_abs_shap", "reason_codes", "rates")


def select_cohort(
    frame: pd.DataFrame,
    model_id: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """The rows of ``model_id`` (all when empty) created in [since, until).

    Raises:
        ValueError: A bound without a timezone (its UTC time would be a guess).
    """
    for bound in (since, until):
        if bound is not None and bound.tzinfo is None:
            raise ValueError(f"{bound.isoformat()}: a time range needs a timezone")
    if frame.empty:
        return frame
    keep = pd.Series(True, index=frame.index)
    if model_id:
        keep &= frame["model_id"] == model_id
    if since is not None:
        keep &= frame["created_at"] >= pd.Timestamp(since)
    if until is not None:
        keep &= frame["created_at"] < pd.Timestamp(until)
    return frame[keep]


def reason_frequencies(frame: pd.DataFrame) -> pd.Series:
    """How many decisions cite each reason code, most cited first (ties by code)."""
    codes = frame["reason_codes"].explode().dropna()
    counts = codes.value_counts()
    order = sorted(counts.index, key=lambda code: (-counts[code], code))
    return counts.reindex(order).rename("decisions")


def _bucket(frame: pd.DataFrame) -> str:
    span = frame["created_at"].max() - frame["created_at"].min()
    return "h" if span <= pd.Timedelta(days=2) else "D"


def rates_over_time(frame: pd.DataFrame, freq: str = "") -> pd.DataFrame:
    """Per time bucket (hours over two days or less, else days; or ``freq``): decisions,
    the fallback rate (answers given by the deterministic text) and the gate-rejection rate
    (drafted candidates the faithfulness gate refused; NaN where nothing was drafted)."""
    created = frame["created_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    grouped = frame.assign(bucket=created.dt.floor(freq or _bucket(frame))).groupby("bucket")
    drafted = grouped["drafted"].sum()
    return pd.DataFrame(
        {
            "decisions": grouped.size(),
            "fallback_rate": grouped["fallback"].mean().astype("float64"),
            "gate_rejection_rate": (grouped["rejected"].sum() / drafted.where(drafted > 0)),
        }
    )


def _barh(figure: Figure, labels: list[str], values: list[float], xlabel: str) -> None:
    axes = figure.add_subplot()
    positions = range(len(labels))
    axes.barh(list(positions), values, color="#1f77b4")
    axes.set_yticks(list(positions), labels)
    axes.invert_yaxis()
    axes.set_xlabel(xlabel)


def _reason_figure(frame: pd.DataFrame, title: str) -> Figure:
    counts = reason_frequencies(frame)
    figure = Figure(figsize=(7, 1.2 + 0.35 * max(len(counts), 1)))
    if counts.empty:
        figure.text(0.5, 0.5, "no principal reasons in this cohort", ha="center")
    else:
        _barh(figure, list(counts.index), list(counts.to_numpy(float)), "decisions citing it")
    figure.suptitle(f"{title}: reason codes", fontsize=10)
    return figure


def _rates_figure(frame: pd.DataFrame, title: str) -> Figure:
    freq = _bucket(frame)
    rates = rates_over_time(frame, freq)
    figure = Figure(figsize=(8, 3.5))
    axes = figure.add_subplot()
    if len(rates) == 1:  # one bucket: show it in its own width, not over years
        step = pd.Timedelta(1, unit=freq.lower())
        axes.set_xlim(rates.index[0] - step, rates.index[0] + step)
    axes.plot(rates.index, rates["fallback_rate"], marker="o", label="fallback rate")
    if rates["gate_rejection_rate"].notna().any():
        axes.plot(
            rates.index, rates["gate_rejection_rate"], marker="s", label="gate-rejection rate"
        )
    else:
        axes.text(
            0.5, 0.9, "nothing drafted: no gate rejections", transform=axes.transAxes, ha="center"
        )
    axes.set_ylim(-0.05, 1.05)
    axes.set_ylabel("share")
    axes.set_xlabel(f"time (UTC), per {'hour' if freq == 'h' else 'day'}")
    axes.legend(loc="upper right")
    figure.autofmt_xdate()
    figure.suptitle(f"{title}: fallback and gate rejections over time", fontsize=10)
    return figure


def cohort_figures(
    frame: pd.DataFrame, max_display: int = 12, only: tuple[str, ...] = COHORT_PLOTS
) -> dict[str, Figure]:
    """The plots of :data:`COHORT_PLOTS` (or just those named in ``only``) for one cohort
    (one model: attributions of two models do not share a scale).

    Raises:
        ValueError: The cohort is empty or mixes models, or a name is not a cohort plot.
    """
    import shap

    unknown = set(only) - set(COHORT_PLOTS)
    if unknown:
        raise ValueError(f"not a cohort plot: {', '.join(sorted(unknown))}")
    answered = frame[frame["base_value"].notna()] if "base_value" in frame else frame
    explanation = frame_to_explanation(answered)
    title = str(answered["model_id"].iloc[0])
    units = str(answered["units"].iloc[0])
    count = len(answered)
    draw = {
        "beeswarm": lambda: shap_figure(
            lambda: shap.plots.beeswarm(explanation, max_display=max_display, show=False)
        ),
        "mean_abs_shap": lambda: shap_figure(
            lambda: shap.plots.bar(explanation, max_display=max_display, show=False)
        ),
        "reason_codes": lambda: _reason_figure(answered, title),
        "rates": lambda: _rates_figure(answered, title),
    }
    figures = {name: draw[name]() for name in only}
    if "beeswarm" in figures:
        figures["beeswarm"].suptitle(f"{title}: attributions of {count} decisions ({units})")
    if "mean_abs_shap" in figures:
        figures["mean_abs_shap"].suptitle(f"{title}: mean |SHAP| over {count} decisions ({units})")
    return figures


def cohort_pngs(
    frame: pd.DataFrame, max_display: int = 12, only: tuple[str, ...] = COHORT_PLOTS
) -> dict[str, bytes]:
    """:func:`cohort_figures` as PNG bytes, by plot name."""
    return {name: png_bytes(f) for name, f in cohort_figures(frame, max_display, only).items()}
