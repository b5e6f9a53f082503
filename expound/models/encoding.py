"""Encoding of an applicant's features into the numeric row the demo models take.

One column per original feature, in manifest order: numbers as floats, categories as the
index of the category in the manifest's list, booleans as 0/1, null as NaN. The models
(LightGBM with native categorical splits, a scikit-learn pipeline that one-hot encodes the
category columns) are trained on exactly this encoding, so it lives in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from expound.domain import FeatureScalar
from expound.models.manifest import FeatureSpec


def encode_value(spec: FeatureSpec, value: FeatureScalar) -> float:
    """Encodes one validated feature value."""
    if value is None:
        return float("nan")
    if spec.type == "category":
        assert spec.categories is not None
        return float(spec.categories.index(str(value)))
    if spec.type == "bool":
        return 1.0 if value else 0.0
    return float(value)


def encode_rows(
    specs: Sequence[FeatureSpec], rows: Sequence[Mapping[str, FeatureScalar]]
) -> npt.NDArray[np.float64]:
    """Encodes validated rows into a float matrix, one column per feature."""
    matrix = np.empty((len(rows), len(specs)), dtype=np.float64)
    for i, row in enumerate(rows):
        for j, spec in enumerate(specs):
            matrix[i, j] = encode_value(spec, row[spec.name])
    return matrix


def category_columns(specs: Sequence[FeatureSpec]) -> list[int]:
    """Indices of the category columns."""
    return [j for j, spec in enumerate(specs) if spec.type == "category"]
