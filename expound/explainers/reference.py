"""The model's reference population: the context a value is read in.

The reference sample is the model directory's SHAP background set (``manifest.background``,
its sha256 in the manifest, verified here again before use). Each of its rows is scored by
the model, so the sample says what a value means among the model's applicants (its
percentile), what is typical among favourable decisions, and the base rate (the share of
favourable decisions and the mean score). Statistics are computed once per model version
(artifact and sample hashes) and cached; a plan records which sample it used, by hash.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import statistics
import threading
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from expound.domain import FeatureScalar
from expound.errors import ModelIntegrityError
from expound.models.manifest import FeatureSpec
from expound.models.registry import LoadedModel
from expound.models.scoring import score_of


@dataclass(frozen=True)
class FeatureReference:
    """One feature's values across the reference sample.

    Every plan reads a few features' context, so what does not depend on the applicant is
    computed once: the numeric values sorted (a percentile is then two bisections, not a
    pass over the sample), and the typical favourable value per way of reading it.
    """

    values: tuple[FeatureScalar, ...]
    favourable_values: tuple[FeatureScalar, ...]
    _numbers: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _ordered: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _typical: dict[tuple[str, tuple[str, ...]], FeatureScalar] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        numbers = tuple(float(v) for v in self.values if isinstance(v, (int, float)))
        object.__setattr__(self, "_numbers", numbers)
        # NaN has no place in an order (and is neither below nor equal to any value).
        object.__setattr__(self, "_ordered", tuple(sorted(v for v in numbers if v == v)))

    def percentile(self, value: float) -> int:
        """The mid-rank percentile of ``value`` among the sample (0-100, rounded)."""
        if not self._numbers:
            raise ValueError("no numeric reference values")
        if value != value:
            below = equal = 0
        else:
            below = bisect.bisect_left(self._ordered, value)
            equal = bisect.bisect_right(self._ordered, value) - below
        return round(100 * (below + 0.5 * equal) / len(self._numbers))

    def typical_favourable(self, spec: FeatureSpec) -> FeatureScalar:
        """The typical value among favourable decisions: the median of a number (rounded
        for integers), the most common category; None when the sample has none."""
        key = (spec.type, tuple(spec.categories or ()))
        if key not in self._typical:
            self._typical[key] = self._typical_favourable(spec)
        return self._typical[key]

    def _typical_favourable(self, spec: FeatureSpec) -> FeatureScalar:
        present = [v for v in self.favourable_values if v is not None]
        if not present:
            return None
        if spec.type in ("number", "integer"):
            median = statistics.median(float(v) for v in present if isinstance(v, (int, float)))
            return float(round(median)) if spec.type == "integer" else round(median, 2)
        counts = Counter(str(v) for v in present)
        # Ties go to the category listed first, so the answer does not depend on row order.
        order = {c: j for j, c in enumerate(spec.categories or [])}
        return min(counts, key=lambda c: (-counts[c], order.get(c, len(order))))


@dataclass(frozen=True)
class ReferenceSample:
    """The reference sample of one model version, scored by that model."""

    name: str
    sha256: str
    rows: int
    favourable_rows: int
    mean_score: float
    features: dict[str, FeatureReference]

    @property
    def base_rate(self) -> float:
        """The share of favourable decisions in the sample."""
        return self.favourable_rows / self.rows


MAX_CACHED = 64
_cache: dict[tuple[str, str, str], ReferenceSample] = {}
_lock = threading.Lock()


def reference_sample(model: LoadedModel) -> ReferenceSample:
    """The model's scored reference sample (cached per artifact and sample hash).

    Raises:
        ModelIntegrityError: the sample no longer matches the manifest's sha256.
    """
    manifest = model.manifest
    key = (str(model.directory), manifest.artifact_sha256, manifest.background_sha256)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    content = (model.directory / manifest.background).read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    if digest != manifest.background_sha256:
        raise ModelIntegrityError(
            f"model directory {model.directory}: background {manifest.background} has "
            f"sha256 {digest}, manifest says {manifest.background_sha256}"
        )
    rows: list[dict[str, FeatureScalar]] = json.loads(content)
    raw = np.asarray(model.scorer.raw(model.background), dtype=np.float64)
    scores = [score_of(manifest.score.space, float(r)) for r in raw]
    favourable = [not manifest.decision.is_adverse(s) for s in scores]
    features = {
        spec.name: FeatureReference(
            values=tuple(row.get(spec.name) for row in rows),
            favourable_values=tuple(
                row.get(spec.name) for row, ok in zip(rows, favourable, strict=True) if ok
            ),
        )
        for spec in manifest.features
    }
    sample = ReferenceSample(
        name=manifest.background,
        sha256=digest,
        rows=len(rows),
        favourable_rows=sum(favourable),
        mean_score=float(statistics.fmean(scores)),
        features=features,
    )
    with _lock:
        _cache[key] = sample
        # Reloads bring new versions; the oldest entries go (dicts keep insertion order).
        while len(_cache) > MAX_CACHED:
            del _cache[next(iter(_cache))]
    return sample
