"""The category values a booster trained on pandas ``category`` columns keeps in itself.

XGBoost (from 3.1, ``Booster.get_categories``) and LightGBM (``pandas_categorical`` at the
end of its text format) store, for each categorical feature, the list of values it was
trained on: pandas' ``Series.cat.categories``. The trees split on a value's index in that
list (pandas' ``Series.cat.codes``), so the index is the code the model takes and the value
is what a sample of the raw data holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from expound.models.manifest import CategoryCode

StoredCategories = dict[str, list[CategoryCode]]


def _values(values: Sequence[Any]) -> list[CategoryCode]:
    coded: list[CategoryCode] = []
    for value in values:
        if not isinstance(value, str) and not float(value).is_integer():
            # A category is named by text or a whole number (the manifest's codes).
            raise ValueError(f"a category value {value!r} is neither text nor a whole number")
        coded.append(value if isinstance(value, str) else int(value))
    return coded


def xgboost_categories(booster: Any) -> StoredCategories:
    """Each categorical column's stored values (none before XGBoost 3.1, which kept none,
    or when the booster was trained on integer codes).

    Raises:
        ValueError: a stored value is a fraction.
    """
    if not hasattr(booster, "get_categories") or booster.get_categories().empty():
        return {}
    # The arrow export is XGBoost's one public reading of the stored values.
    exported = booster.get_categories(export_to_arrow=True).to_arrow()
    return {name: _values(array.to_pylist()) for name, array in exported if array is not None}


def lightgbm_categories(booster: Any, categorical: Sequence[str]) -> StoredCategories:
    """Each categorical column's stored values.

    LightGBM lists the values of the data frame's ``category`` columns in column order,
    without their names; by default (``categorical_feature="auto"``) those columns are its
    categorical features, which is how they are paired here.

    Raises:
        ValueError: the lists cannot be paired with the categorical features (an ordered
            category column, or categorical features that were integer columns); a stored
            value is a fraction.
    """
    stored = booster.pandas_categorical or []
    if not stored:
        return {}
    if len(stored) != len(categorical):
        raise ValueError(
            f"the model stores the values of {len(stored)} pandas category columns but has "
            f"{len(categorical)} categorical features {list(categorical)}: which list belongs "
            "to which column cannot be told; import a sample of the integer codes and a "
            "model trained on them"
        )
    return {column: _values(values) for column, values in zip(categorical, stored, strict=True)}


def to_codes(series: pd.Series, values: list[CategoryCode]) -> pd.Series:
    """A sample column as the model's codes: each cell one of the stored ``values`` (mapped
    to its index), or already the index when the values are strings and the column numbers.

    Raises:
        ValueError: a cell is neither (the message names the cell and the values).
    """
    by_index = pd.api.types.is_numeric_dtype(series) and all(isinstance(v, str) for v in values)
    mapping = {
        cell: category_code(cell, values, by_index) for cell in series.dropna().unique().tolist()
    }
    return series.map(mapping)


def category_code(cell: Any, values: list[CategoryCode], by_index: bool) -> int:
    """One cell (not null) as the model's code: the index of the stored value it is, or,
    with ``by_index`` (a column of numbers for values that are text), the index it already is.

    Raises:
        ValueError: the cell is neither (the message names the cell and the values).
    """
    key = cell if isinstance(cell, str) else int(cell) if float(cell).is_integer() else cell
    if by_index and isinstance(key, int) and 0 <= key < len(values):
        return key
    if not by_index and key in values:
        return values.index(key)
    codes = f" nor one of their codes 0-{len(values) - 1}" if by_index else ""
    raise ValueError(f"holds {cell!r}, which is not among the model's categories {values}{codes}")
