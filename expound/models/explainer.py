"""The explainer contract: what a served model's SHAP explainer computes.

The algorithms live in :mod:`expound.explainers`; the contract lives here, below them,
so that the registry can hand out a model together with its explainer without
``models`` importing ``explainers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RawAttribution:
    """Per-column contributions (the manifest's ``model_columns`` order) and the base value,
    in raw units; one-hot columns are summed back to their feature afterwards.

    ``model_output`` is the model's raw output for the row when the explainer computed it
    with the row in hand: by the library on the input the explainer built, or through shap's
    copy of the trees checked against the library's own output at load; None means the
    caller asks the library.
    """

    contributions: npt.NDArray[np.float64]
    base_value: float
    model_output: float | None = None


class Explainer(Protocol):
    """Computes SHAP values for one encoded row. Sync and CPU-bound."""

    algorithm: str
    library_version: str
    background_sha256: str
    sampling_seed: int

    def explain_row(self, row: FloatMatrix) -> RawAttribution:
        """Contributions for a (1, n_columns) encoded row."""
        ...
