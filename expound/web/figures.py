"""Geometry of the pages' inline SVG figures: the attribution waterfall and bar charts.

Computed here, drawn by the templates: a figure is a list of bars with their positions in
percent of the plot's width, so the page needs no script and no plotting library to show
them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from expound.domain import Attributions, Explanation

WATERFALL_BARS = 10


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value shown, and where it lies (percent of the plot width)."""

    label: str
    value: float
    start: float
    width: float
    increases: bool


def _shown(value: object) -> str:
    """A feature's value as the request gave it: a whole number without ".0" (the
    attributions carry numbers as floats: 48, not 48.0), others exactly."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _scaled(points: Sequence[float]) -> tuple[float, float]:
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    return low, span


def waterfall(attributions: Attributions, bars: int = WATERFALL_BARS) -> list[Bar]:
    """From the base value to the model output, one bar per feature by rank; the features
    beyond ``bars`` summed into one "other features" bar, so the last bar ends at the output."""
    items = sorted(attributions.items, key=lambda item: item.rank)
    shown = [(f"{item.feature} = {_shown(item.value)}", item.contribution) for item in items[:bars]]
    rest = sum(item.contribution for item in items[bars:])
    if items[bars:]:
        shown.append((f"{len(items) - bars} other features", rest))
    running = attributions.base_value
    ends = [running]
    for _, contribution in shown:
        running += contribution
        ends.append(running)
    low, span = _scaled(ends)
    figure = []
    at = attributions.base_value
    for label, contribution in shown:
        left = min(at, at + contribution)
        figure.append(
            Bar(
                label,
                contribution,
                100 * (left - low) / span,
                max(100 * abs(contribution) / span, 0.3),
                contribution > 0,
            )
        )
        at += contribution
    return figure


def magnitudes(values: dict[str, float]) -> list[Bar]:
    """Horizontal bars of non-negative values, largest first, scaled to the largest."""
    largest = max(values.values(), default=0.0) or 1.0
    ordered = sorted(values.items(), key=lambda item: -item[1])
    return [Bar(label, value, 0.0, 100 * value / largest, True) for label, value in ordered]


@dataclass(frozen=True)
class CohortView:
    """What recent explanations of one model say: global importance and reason counts."""

    explanations: int
    importance: list[Bar]  # mean |SHAP| per feature
    reasons: list[Bar]  # how often each principal reason was given


def cohort(explanations: Iterable[Explanation]) -> CohortView:
    """Mean |contribution| per feature and the frequency of each reason code, labelled in
    the third person (the page's readers are analysts and compliance)."""
    totals: dict[str, float] = {}
    reasons: Counter[str] = Counter()
    # Counted by code, so a record written before the third-person wording was kept (text
    # only) adds to the same bar; the bar takes the first recorded neutral wording (the
    # newest: records come newest first), else the first text.
    neutral: dict[str, str] = {}
    text: dict[str, str] = {}
    count = 0
    for explanation in explanations:
        count += 1
        for item in explanation.attributions.items:
            totals[item.feature] = totals.get(item.feature, 0.0) + abs(item.contribution)
        for reason in explanation.principal_reasons:
            reasons[reason.code] += 1
            text.setdefault(reason.code, reason.text)
            if reason.neutral_text:
                neutral.setdefault(reason.code, reason.neutral_text)
    importance = {feature: total / count for feature, total in totals.items()} if count else {}
    labelled = {
        f"{code}: {neutral.get(code) or text[code]}": float(n) for code, n in reasons.items()
    }
    return CohortView(count, magnitudes(importance), magnitudes(labelled))
