"""Counterfactual recourse: the smallest declared changes that flip an adverse decision.

An exact search over the manifest's recourse grid (``FeatureSpec.recourse``): every single
change of one actionable feature, then every pair of changes of two, each in the declared
direction and within the declared bounds, is encoded and scored by the model itself in one
batch. Protected features and features without a recourse block never change. Among the
changes that flip the decision, the smallest normalised change comes first (one feature
before two on a tie); a pair is kept only when neither of its two changes flips the
decision alone. Each counterfactual kept is then re-scored on its own through the full
encode-and-score path and recorded with the score it got: a text may state only such a
recorded, verified counterfactual.

Why an exact grid search and not a counterfactual library (dice-ml): the grids of the demo
models hold a few hundred rows, which the model scores in a few milliseconds, so the search
can be exhaustive: it finds *the* smallest change on the grid, deterministically, and every
result is a row the model actually scored. dice-ml's random and genetic methods sample
(different answers per seed, no minimality guarantee), its KD-tree method only proposes
rows from the training data, and it needs the training frame at serving time.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from expound.domain import FeatureScalar
from expound.models.encoding import encode_value
from expound.models.manifest import FeatureSpec, ModelManifest
from expound.models.registry import LoadedModel
from expound.models.scoring import score_of

MAX_COUNTERFACTUALS = 3
# The most rows one search scores (a few milliseconds on the demo models' few hundred):
# beyond it, only the cheapest pairs are tried and the search records it is not exhaustive.
MAX_ROWS = 20_000
# How close to the threshold a score computed over the search's whole array is recomputed
# as the decision computes it (many ulps: the two differ in the last bit at most).
NEAR_THRESHOLD = 1e-12


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Change(_Frozen):
    """One feature's value, before and after."""

    feature: str
    before: FeatureScalar
    after: FeatureScalar


class Counterfactual(_Frozen):
    """A changed row the model re-scored: its changes, its score and whether it flips."""

    changes: list[Change]
    score: float
    flips: bool
    distance: float  # the normalised size of the change (sum over its features)


class Recourse(_Frozen):
    """The outcome of one recourse search, as recorded."""

    method: str = "exact-grid/v1"
    searched_features: list[str]
    # False when the grid had more pairs than one search scores: only the cheapest were
    # tried, so "no change flips the decision" may not be said.
    exhaustive: bool = True
    rows_scored: int
    counterfactuals: list[Counterfactual]
    elapsed_ms: float


@dataclass(frozen=True)
class _Move:
    feature: str
    value: FeatureScalar
    cost: float
    columns: tuple[int, ...]
    encoded: tuple[Any, ...]


def _targets(spec: FeatureSpec, current: FeatureScalar) -> list[tuple[FeatureScalar, float]]:
    """The values recourse may move ``spec`` to from ``current``, with their cost."""
    recourse = spec.recourse
    if recourse is None or current is None:
        return []
    up = recourse.direction in ("increase", "either")
    down = recourse.direction in ("decrease", "either")
    if recourse.order is not None:
        if str(current) not in recourse.order:
            return []
        here = recourse.order.index(str(current))
        rungs = len(recourse.order) - 1
        return [
            (category, abs(j - here) / rungs)
            for j, category in enumerate(recourse.order)
            if (j > here and up) or (j < here and down)
        ]
    assert recourse.minimum is not None and recourse.maximum is not None
    assert recourse.step is not None
    low = max(recourse.minimum, spec.minimum if spec.minimum is not None else -math.inf)
    high = min(recourse.maximum, spec.maximum if spec.maximum is not None else math.inf)
    value = float(current)
    span = recourse.maximum - recourse.minimum
    count = math.floor((recourse.maximum - recourse.minimum) / recourse.step + 1e-9)
    grid = [recourse.minimum + k * recourse.step for k in range(count + 1)]
    out: list[tuple[FeatureScalar, float]] = []
    for point in grid:
        if not low <= point <= high or point == value:
            continue
        if (point > value and up) or (point < value and down):
            shown: FeatureScalar = float(round(point)) if spec.type == "integer" else point
            out.append((shown, abs(point - value) / span))
    return out


def _moves(manifest: ModelManifest, features: dict[str, FeatureScalar]) -> list[_Move]:
    position = {name: j for j, name in enumerate(manifest.model_columns())}
    moves = []
    for spec in manifest.features:
        if spec.protected or not spec.actionable:
            continue
        columns = spec.columns()
        for value, cost in _targets(spec, features.get(spec.name)):
            moves.append(
                _Move(
                    spec.name,
                    value,
                    cost,
                    tuple(position[c] for c in columns),
                    encode_value(spec, value),
                )
            )
    return moves


def _grid(
    base: npt.NDArray[Any], moves: list[_Move], combos: list[tuple[_Move, ...]]
) -> npt.NDArray[Any]:
    """The rows the search scores, one per combination: ``base`` with its changes applied.

    Built as arrays, not row by row (a search scores up to ``MAX_ROWS`` rows, and a copy
    and a loop per row cost milliseconds): each move's row once, then a pair's row is its
    first move's row with its second move's columns taken over.
    """
    index = {id(move): j for j, move in enumerate(moves)}
    moved = np.repeat(base[None, :], len(moves), axis=0)
    changes = np.zeros(moved.shape, dtype=bool)
    for j, move in enumerate(moves):
        for column, encoded in zip(move.columns, move.encoded, strict=True):
            moved[j, column] = encoded
            changes[j, column] = True
    first = np.fromiter((index[id(c[0])] for c in combos), dtype=np.intp, count=len(combos))
    rows = moved[first]
    pairs = np.fromiter((k for k, combo in enumerate(combos) if len(combo) == 2), dtype=np.intp)
    if len(pairs):
        second = np.fromiter(
            (index[id(combos[k][1])] for k in pairs), dtype=np.intp, count=len(pairs)
        )
        rows[pairs] = np.where(changes[second], moved[second], rows[pairs])
    return rows


def _flips(manifest: ModelManifest, raw: npt.NDArray[Any]) -> list[bool]:
    """Whether each raw output's score is on the favourable side, as :func:`score_of` and
    the decision rule decide it one row at a time, computed over the whole array."""
    rule = manifest.decision
    raw = np.asarray(raw, dtype=np.float64)
    if manifest.score.space == "log_odds":
        scores = 1.0 / (1.0 + np.exp(-raw))
        # The array exp may round the last bit otherwise than the one-value exp of
        # score_of: a row that close to the threshold is scored again the same way.
        for k in np.flatnonzero(np.abs(scores - rule.threshold) <= NEAR_THRESHOLD):
            scores[k] = score_of(manifest.score.space, float(raw[k]))
    else:
        scores = raw
    return [not adverse for adverse in rule.adverse_each(scores).tolist()]


def _smallest_per_features(
    moves: list[_Move], combos: list[tuple[_Move, ...]], flips: list[bool]
) -> dict[tuple[str, ...], tuple[float, int, tuple[_Move, ...]]]:
    """For each feature or pair of features, its cheapest flipping combination (the first
    in search order on a tie) as (cost, order, combination).

    A pair is no recourse of its own when one of its changes flips alone. ``combos`` are
    the single moves in ``moves`` order, then the pairs; only the flipping ones are visited
    (a borderline denial flips on most of a grid of thousands).
    """
    single_flip = {(m.feature, m.value) for m, flip in zip(moves, flips, strict=False) if flip}
    best: dict[tuple[str, ...], tuple[float, int, tuple[_Move, ...]]] = {}
    for order in [k for k, flip in enumerate(flips) if flip]:
        combo = combos[order]
        if len(combo) == 1:
            key: tuple[str, ...] = (combo[0].feature,)
            cost = combo[0].cost
        else:
            first, second = combo
            if (first.feature, first.value) in single_flip or (
                second.feature,
                second.value,
            ) in single_flip:
                continue
            key = (first.feature, second.feature)
            cost = first.cost + second.cost
        found = best.get(key)
        if found is None or (cost, order) < (found[0], found[1]):
            best[key] = (cost, order, combo)
    return best


def _cheapest_pairs(moves: list[_Move], budget: int) -> tuple[list[tuple[_Move, ...]], bool]:
    """Every pair of changes of two features, or, beyond ``budget``, the ``budget``
    cheapest ones (then False: the search is exact only among changes that small)."""
    groups: dict[str, list[_Move]] = {}
    for move in moves:
        groups.setdefault(move.feature, []).append(move)
    blocks = list(itertools.combinations(groups.values(), 2))
    if sum(len(a) * len(b) for a, b in blocks) <= budget:
        return [(a, b) for left, right in blocks for a in left for b in right], True
    if budget <= 0:
        return [], False
    # Pair costs block by block as arrays: a Python tuple per pair would take seconds.
    costs = [
        (np.array([m.cost for m in left])[:, None] + np.array([m.cost for m in right])).ravel()
        for left, right in blocks
    ]
    flat = np.concatenate(costs)
    keep = np.argpartition(flat, budget - 1)[:budget]
    starts = np.cumsum([0, *(len(c) for c in costs)])
    pairs: list[tuple[_Move, ...]] = []
    for index in sorted(int(k) for k in keep):
        block = int(np.searchsorted(starts, index, side="right")) - 1
        left, right = blocks[block]
        a, b = divmod(index - int(starts[block]), len(right))
        pairs.append((left[a], right[b]))
    return pairs, False


def search_recourse(
    model: LoadedModel,
    features: dict[str, FeatureScalar],
    limit: int = MAX_COUNTERFACTUALS,
) -> Recourse:
    """The smallest flipping changes of one or two actionable features, re-scored.

    Args:
        model: the loaded model (manifest, scorer).
        features: the applicant's validated features (an adverse decision).
        limit: the most counterfactuals kept.

    Returns:
        The search as recorded; ``counterfactuals`` is empty when no declared change of
        one or two features flips the decision.
    """
    started = time.perf_counter()
    manifest = model.manifest
    rule = manifest.decision
    base = model.encode(features)[0]
    moves = _moves(manifest, features)
    pairs, exhaustive = _cheapest_pairs(moves, MAX_ROWS - len(moves))
    combos: list[tuple[_Move, ...]] = [(m,) for m in moves]
    combos += pairs
    flipped: list[tuple[float, int, tuple[_Move, ...]]] = []
    if combos:
        flips = _flips(manifest, model.scorer.raw(_grid(base, moves, combos)))
        best = _smallest_per_features(moves, combos, flips)
        flipped = sorted(best.values(), key=lambda item: (item[0], len(item[2]), item[1]))
    chosen = flipped[:limit]
    changed_rows = [dict(features) | {m.feature: m.value for m in combo} for _, _, combo in chosen]
    counterfactuals = []
    if chosen:
        # Re-scored apart from the search, each row encoded from its feature values the way
        # the service encodes a request (one batch: the scorer's fixed cost paid once).
        encoded = np.vstack([model.encode(row) for row in changed_rows])
        rescored = [score_of(manifest.score.space, float(r)) for r in model.scorer.raw(encoded)]
        for (cost, _, combo), score in zip(chosen, rescored, strict=True):
            counterfactuals.append(
                Counterfactual(
                    changes=[
                        Change(feature=m.feature, before=features[m.feature], after=m.value)
                        for m in combo
                    ],
                    score=score,
                    flips=not rule.is_adverse(score),
                    distance=round(cost, 6),
                )
            )
    return Recourse(
        searched_features=sorted(
            s.name
            for s in manifest.features
            if s.recourse is not None and s.actionable and not s.protected
        ),
        exhaustive=exhaustive,
        rows_scored=len(combos) + len(counterfactuals),
        counterfactuals=[c for c in counterfactuals if c.flips],
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )
