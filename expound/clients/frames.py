"""Answers as analysts hold them: one DataFrame row per decision, and ``shap.Explanation``.

Every source goes through one row builder (:func:`decision_row`): Explain responses,
archived records (GetRecord / ListRecords), explain-batch results and the typed Parquet
export, so a column means the same thing wherever it comes from. The wide frame has one
``shap_<feature>`` float column per attribution and one ``value_<feature>`` column per
feature value; :func:`frame_to_explanation` turns it into a ``shap.Explanation`` so that
``shap.plots.waterfall``, ``beeswarm`` and ``bar`` draw it directly.

Needs the notebook extra (``pip install 'expound[notebook]'``): pandas, and shap for
:func:`to_explanation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from expound.v1 import explain_pb2 as pb
from expound.wire import datetime_from_pb, feature_from_pb, reason_third_person

if TYPE_CHECKING:
    import shap

__all__ = [
    "ATTRIBUTION_PREFIX",
    "VALUE_PREFIX",
    "attribution_items",
    "decision_row",
    "feature_names",
    "frame_to_explanation",
    "records_to_frame",
    "responses_to_frame",
    "rows_to_frame",
    "to_explanation",
]

ATTRIBUTION_PREFIX = "shap_"
VALUE_PREFIX = "value_"


def attribution_items(response: pb.ExplainResponse) -> list[dict[str, Any]]:
    """The attributions of one answer, in rank order: feature, value (a number or a text,
    the other None), contribution, rank."""
    items = []
    for item in response.attributions.items:
        try:
            value = feature_from_pb(item.value)
        except ValueError:
            value = None
        number = float(value) if isinstance(value, (int, float)) else None
        items.append(
            {
                "feature": item.feature,
                "value_number": number,
                "value_text": None if number is not None or value is None else str(value),
                "contribution": item.contribution,
                "rank": item.rank,
            }
        )
    return items


def decision_row(response: pb.ExplainResponse) -> dict[str, Any]:
    """One decision as a row of typed scalars and lists (attributions nested, as
    :func:`attribution_items` gives them)."""
    prediction = response.prediction
    drafted = [c for c in response.candidates if not c.deterministic]
    return {
        "record_id": response.record_id or None,
        "model_id": response.model_id,
        "decision_id": response.decision_id,
        "created_at": datetime_from_pb(response.created_at),
        "archived": response.archived,
        "decision": prediction.decision,
        "score": prediction.score,
        "adverse": prediction.adverse,
        "threshold": prediction.threshold,
        "units": response.attributions.units,
        "base_value": response.attributions.base_value,
        "model_output": response.attributions.model_output,
        "reason_codes": [r.code for r in response.principal_reasons],
        # In the third person, as analysts read them (the applicant's wording is in the
        # record and the export's principal_reasons).
        "reasons": [reason_third_person(r) for r in response.principal_reasons],
        "selected_text": response.selected.text,
        "fallback": response.fallback,
        "fallback_reason": response.fallback_reason or None,
        # The gate's work: drafted candidates, and how many it found unfaithful.
        "drafted": len(drafted),
        "rejected": sum(1 for c in drafted if not c.faithful),
        "attributions": attribution_items(response),
    }


def _widen(row: Mapping[str, Any]) -> dict[str, Any]:
    wide = {k: v for k, v in row.items() if k != "attributions"}
    for item in row.get("attributions") or ():
        feature = item["feature"]
        wide[ATTRIBUTION_PREFIX + feature] = item["contribution"]
        number, text = item["value_number"], item["value_text"]
        wide[VALUE_PREFIX + feature] = number if number is not None else text
    return wide


def rows_to_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A wide frame from :func:`decision_row` rows (or rows read back from Parquet with
    the same nested ``attributions``): the scalar columns, then ``shap_<feature>`` and
    ``value_<feature>`` per feature, in the order features first appear."""
    frame = pd.DataFrame([_widen(row) for row in rows])
    if frame.empty:
        return frame
    if "created_at" in frame:
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    shap_columns = [c for c in frame.columns if c.startswith(ATTRIBUTION_PREFIX)]
    for column in shap_columns:
        frame[column] = frame[column].astype("float64")
    value_columns = [c for c in frame.columns if c.startswith(VALUE_PREFIX)]
    others = [c for c in frame.columns if c not in shap_columns and c not in value_columns]
    return frame[others + shap_columns + value_columns]


def responses_to_frame(responses: Iterable[pb.ExplainResponse]) -> pd.DataFrame:
    """One row per Explain answer (see the module docstring for the columns)."""
    return rows_to_frame(decision_row(response) for response in responses)


def records_to_frame(records: Iterable[pb.Record]) -> pd.DataFrame:
    """One row per archived record (GetRecord / ``iter_records``); tombstones and expired
    records, which hold no decision, are left out."""
    return responses_to_frame(record.response for record in records if record.HasField("response"))


def feature_names(frame: pd.DataFrame) -> list[str]:
    """The features a wide frame has attributions for, in column order."""
    return [c[len(ATTRIBUTION_PREFIX) :] for c in frame.columns if c.startswith(ATTRIBUTION_PREFIX)]


def _data(frame: pd.DataFrame, features: Sequence[str]) -> np.ndarray[Any, Any]:
    values = frame[[VALUE_PREFIX + f for f in features]]
    numeric = values.apply(pd.to_numeric, errors="coerce")
    data: np.ndarray[Any, Any]
    if not (numeric.isna() & values.notna()).to_numpy().any():
        data = numeric.to_numpy(dtype="float64")
    else:
        data = values.to_numpy(dtype=object)
    return data


def frame_to_explanation(frame: pd.DataFrame) -> shap.Explanation:
    """A ``shap.Explanation`` from a wide frame: values (rows x features), base values,
    data (numbers where every value is one, else objects) and feature names.

    Raises:
        ValueError: The frame is empty, or mixes models or units (their attributions do
            not share a scale).
    """
    import shap

    if frame.empty:
        raise ValueError("no decisions to explain")
    for column in ("model_id", "units"):
        if column in frame and frame[column].nunique() > 1:
            found = ", ".join(sorted(map(str, frame[column].unique())))
            raise ValueError(f"one {column.replace('_', ' ')} at a time, not {found}")
    features = feature_names(frame)
    values = frame[[ATTRIBUTION_PREFIX + f for f in features]].fillna(0.0)
    return shap.Explanation(
        values=values.to_numpy(dtype="float64"),
        base_values=frame["base_value"].to_numpy(dtype="float64"),
        data=_data(frame, features),
        feature_names=features,
    )


def to_explanation(
    source: Iterable[pb.ExplainResponse] | Iterable[pb.Record] | pd.DataFrame,
) -> shap.Explanation:
    """A ``shap.Explanation`` of Explain answers, archived records or a wide frame
    (:func:`responses_to_frame`, :func:`records_to_frame`, batch results' ``read_frame``).

    Raises:
        ValueError: As :func:`frame_to_explanation`.
    """
    if isinstance(source, pd.DataFrame):
        return frame_to_explanation(source)
    items = list(source)
    if all(isinstance(item, pb.Record) for item in items):
        return frame_to_explanation(records_to_frame(items))
    return frame_to_explanation(responses_to_frame(items))
