"""The Arrow types of a decision as analysts query it, written once for the explain-batch
results and the records export (rows come from :func:`expound.clients.frames.decision_row`).

Times are timestamps in UTC, scores and attributions float64, reasons and candidates
nested ``list<struct>`` columns, so Parquet readers (pandas, DuckDB, Spark) type them
without parsing JSON.
"""

from __future__ import annotations

import pyarrow as pa  # type: ignore[import-untyped]

__all__ = ["ATTRIBUTION", "CANDIDATE", "DECISION_FIELDS", "REASON", "TIMESTAMP"]

TIMESTAMP = pa.timestamp("us", tz="UTC")

# One attribution: the feature's value is a number or a text (the other is null).
ATTRIBUTION = pa.struct(
    [
        pa.field("feature", pa.string(), nullable=False),
        pa.field("value_number", pa.float64()),
        pa.field("value_text", pa.string()),
        pa.field("contribution", pa.float64(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
    ]
)

REASON = pa.struct(
    [
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("code", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        # The third-person wording; null in a record written before it was kept.
        pa.field("neutral_text", pa.string()),
        pa.field("features", pa.list_(pa.string())),
        pa.field("contribution", pa.float64(), nullable=False),
    ]
)

CANDIDATE = pa.struct(
    [
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("deterministic", pa.bool_(), nullable=False),
        pa.field("faithful", pa.bool_(), nullable=False),
        pa.field("generator", pa.string()),
        pa.field("violations", pa.list_(pa.string())),
        pa.field("scores", pa.map_(pa.string(), pa.float64())),
    ]
)

# The columns of frames.decision_row, typed; a failed batch item has nulls in them.
DECISION_FIELDS = [
    pa.field("record_id", pa.string()),
    pa.field("model_id", pa.string()),
    pa.field("decision_id", pa.string()),
    pa.field("created_at", TIMESTAMP),
    pa.field("archived", pa.bool_()),
    pa.field("decision", pa.string()),
    pa.field("score", pa.float64()),
    pa.field("adverse", pa.bool_()),
    pa.field("threshold", pa.float64()),
    pa.field("units", pa.string()),
    pa.field("base_value", pa.float64()),
    pa.field("model_output", pa.float64()),
    pa.field("reason_codes", pa.list_(pa.string())),
    pa.field("reasons", pa.list_(pa.string())),
    pa.field("selected_text", pa.string()),
    pa.field("fallback", pa.bool_()),
    pa.field("fallback_reason", pa.string()),
    pa.field("drafted", pa.int32()),
    pa.field("rejected", pa.int32()),
    pa.field("attributions", pa.list_(ATTRIBUTION)),
]
