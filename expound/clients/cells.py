"""Table cells as feature values, typed by the model's feature schema one cell at a time.

A CSV has no types: every cell is text, and the model's schema (``FeatureSchema.type`` in
``GetModel``'s answer, the manifest's ``type``) says what each feature is. A cell is typed
on its own, never by its column, so one bad cell fails one row: a text that does not read
as its feature's type is sent as the text it is, and the server refuses that row alone,
naming the field (``features[duration_months]: must be a number (integer)``).

- ``integer`` and ``number``: a text Python reads as an int, else as a finite float
  (``"48"``, ``"48.0"``, ``"-1e3"``); ``nan``, ``inf`` and ``1_000`` stay text.
- ``bool``: ``true`` or ``false`` in any case, as pandas read them before; ``1``, ``0``,
  ``yes`` and ``no`` stay text (the server's booleans are true and false, nothing else).
- ``category``: the text as it is (categories ``"1"``, ``"2"`` stay strings).
- A feature the schema does not name: the text as it is (the server names it).

Without a schema (a caller not allowed to read the model), a text that reads as a number is
a number, ``true``/``false`` a boolean, anything else text. A cell that already has a type
(a Parquet column's numbers and booleans) is sent as it is; NaN and None are null.

Light: no server imports, so the client install and the Ray workers both use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from expound.domain import FeatureScalar

__all__ = ["FeatureTypes", "plain_value", "typed_cell", "typed_features"]

# Feature name -> "number" | "integer" | "category" | "bool", as the model's schema says.
FeatureTypes = Mapping[str, str]

_BOOLEANS = {"true": True, "false": False}


def _number(text: str) -> int | float | None:
    """The number ``text`` spells, or None (not finite, or not a number)."""
    if "_" in text:  # int("1_000") is Python's syntax, not a CSV's
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _looks(text: str) -> FeatureScalar:
    """A text typed by its look: a number, a boolean, else the text."""
    number = _number(text)
    if number is not None:
        return number
    return _BOOLEANS.get(text.strip().lower(), text)


def typed_cell(cell: str, feature_type: str | None) -> FeatureScalar:
    """One text cell as the value of a feature of ``feature_type`` (None: no schema).

    A text that does not read as the type is returned unchanged: the server refuses it.
    """
    if feature_type is None:
        return _looks(cell)
    if feature_type in ("integer", "number"):
        number = _number(cell)
        return cell if number is None else number
    if feature_type == "bool":
        return _BOOLEANS.get(cell.strip().lower(), cell)
    return cell


def plain_value(value: Any) -> FeatureScalar:
    """A cell that has a type as a feature value: NaN/None null, numpy scalars plain Python."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
        if isinstance(value, float) and value != value:
            return None
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def typed_features(
    cells: Mapping[str, Any], types: FeatureTypes | None
) -> dict[str, FeatureScalar]:
    """A row's cells as feature values: text cells typed by ``types`` (None: by their look),
    the others as they are."""
    typed: dict[str, FeatureScalar] = {}
    for name, cell in cells.items():
        if not isinstance(cell, str):
            typed[name] = plain_value(cell)
        elif types is None or name in types:
            typed[name] = typed_cell(cell, None if types is None else types[name])
        else:  # not a feature of the model: the server names it
            typed[name] = cell
    return typed
