"""Encoding of an applicant's features into the row the model takes.

The manifest says how the model sees each feature: numbers as floats, booleans as 0/1,
null as NaN, a category as its declared code (default: its position in the list) or as
its declared one-hot columns. The row has the model's columns in the artifact's order
(``ModelManifest.model_columns``). It lives in one place so that training, the registry
and the explainers encode alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from expound.domain import FeatureScalar
from expound.models.manifest import FeatureSpec


def _column_values(spec: FeatureSpec, value: FeatureScalar) -> dict[str, float | int | str]:
    """The model columns one validated feature value fills."""
    if value is None:
        return {c: float("nan") for c in spec.columns()}
    if spec.type == "category" and spec.onehot_columns is not None:
        hot = spec.onehot_columns[(spec.categories or []).index(str(value))]
        return {c: 1.0 if c == hot else 0.0 for c in spec.columns()}
    (column,) = spec.columns()
    if spec.type == "category":
        code = spec.code_of(str(value))
        return {column: code if isinstance(code, str) else float(code)}
    if spec.type == "bool":
        return {column: 1.0 if value else 0.0}
    return {column: float(value)}


def encode_rows(
    specs: Sequence[FeatureSpec],
    rows: Sequence[Mapping[str, FeatureScalar]],
    columns: Sequence[str] | None = None,
) -> npt.NDArray[Any]:
    """Encodes validated rows into the model's matrix, one column per model column.

    ``columns`` is the artifact's column order (default: the features' own). The matrix is
    float unless a category has string codes, then object.
    """
    order = list(columns) if columns is not None else [c for s in specs for c in s.columns()]
    position = {name: j for j, name in enumerate(order)}
    strings = any(isinstance(c, str) for s in specs for c in (s.codes or []))
    matrix = np.empty((len(rows), len(order)), dtype=object if strings else np.float64)
    for i, row in enumerate(rows):
        for spec in specs:
            for column, encoded in _column_values(spec, row[spec.name]).items():
                matrix[i, position[column]] = encoded
    return matrix


def encode_value(spec: FeatureSpec, value: FeatureScalar) -> tuple[float | int | str, ...]:
    """One validated value of one feature as the model columns it fills, in
    ``spec.columns()`` order: what :func:`encode_rows` writes there, without a matrix."""
    filled = _column_values(spec, value)
    return tuple(filled[column] for column in spec.columns())


def column_owners(specs: Sequence[FeatureSpec], columns: Sequence[str]) -> npt.NDArray[np.intp]:
    """For each model column, the index of the feature it belongs to."""
    owner = {c: j for j, spec in enumerate(specs) for c in spec.columns()}
    return np.asarray([owner[c] for c in columns], dtype=np.intp)


def category_columns(specs: Sequence[FeatureSpec]) -> list[int]:
    """Indices of the coded (not one-hot) category columns in the features' own order."""
    order = [c for s in specs for c in s.columns()]
    return [order.index(s.name) for s in specs if s.type == "category" and s.onehot_columns is None]
