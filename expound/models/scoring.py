"""Scoring models: one narrow contract over the artifact formats expound loads.

``raw(rows)`` returns the model output in its explanation units (log-odds of the
score's event); ``score`` turns that into a probability. Artifacts are loaded only after
their sha256 matched the manifest, and only from safe formats: LightGBM's text model
format and skops for scikit-learn (never pickle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from expound.errors import ModelIntegrityError

FloatMatrix = npt.NDArray[np.float64]


class ScoringModel(Protocol):
    """A loaded model artifact."""

    kind: str
    library_version: str

    def raw(self, rows: FloatMatrix) -> npt.NDArray[np.float64]:
        """Model output (log-odds) for encoded rows."""
        ...


def sigmoid(raw: float) -> float:
    """The probability for a log-odds value."""
    return float(1.0 / (1.0 + np.exp(-raw)))


class LightGBMModel:
    """A LightGBM booster loaded from its text model format."""

    kind = "lightgbm"

    def __init__(self, path: Path) -> None:
        import lightgbm

        self.booster = lightgbm.Booster(model_file=str(path))
        self.library_version = f"lightgbm {lightgbm.__version__}"

    def raw(self, rows: FloatMatrix) -> npt.NDArray[np.float64]:
        return np.asarray(self.booster.predict(rows, raw_score=True), dtype=np.float64)


class SklearnModel:
    """A scikit-learn pipeline ending in a linear classifier, loaded with skops."""

    kind = "sklearn"

    def __init__(self, path: Path) -> None:
        import sklearn
        import skops.io

        # skops refuses to build any type outside its default-trusted set; the demo
        # pipelines need none, so an artifact that asks for one is refused outright.
        untrusted = skops.io.get_untrusted_types(file=path)
        if untrusted:
            raise ModelIntegrityError(f"{path.name} contains untrusted types {sorted(untrusted)}")
        self.pipeline = skops.io.load(path)
        self.library_version = f"scikit-learn {sklearn.__version__}"

    def raw(self, rows: FloatMatrix) -> npt.NDArray[np.float64]:
        return np.asarray(self.pipeline.decision_function(rows), dtype=np.float64)


def load_scoring_model(kind: str, path: Path) -> ScoringModel:
    """Loads an artifact of the given kind (its hash already checked)."""
    if kind == "lightgbm":
        return LightGBMModel(path)
    if kind == "sklearn":
        return SklearnModel(path)
    raise ModelIntegrityError(f"unsupported model kind {kind!r}")
