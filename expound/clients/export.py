"""``expound records export``: records with their proof bundles, as JSON lines or Parquet.

Records come oldest first, each with its proof bundle (`expound.clients.bundles`), so the
export verifies offline with ``expound archive verify EXPORT --public-key PEM`` (JSON lines
or Parquet alike).

The JSON lines hold one bundle per line, plus the listing fields. The Parquet file is for
analysts' queries, typed: ``created_at`` and ``retain_until`` timestamps in UTC; the
decision's columns (:data:`expound.clients.columns.DECISION_FIELDS`: score, decision,
reasons, attributions nested as ``list<struct>``); one float64 ``shap_<feature>`` column per
attribution (null where a model has no such feature); ``principal_reasons`` and
``candidates`` as ``list<struct>``; and, beside them, the canonical JSON (``record``) and the
proof (``leaf_hash``, ``leaf_index``, ``audit_path``, ``checkpoint`` as a struct).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from expound.clients.bundles import bundle_from_record
from expound.clients.client import ExplainClient
from expound.times import parse_utc
from expound.v1 import explain_pb2 as pb
from expound.wire import datetime_from_pb

__all__ = [
    "bundle_from_row",
    "exported_records",
    "parquet_schema",
    "read_parquet_bundles",
    "write_jsonl",
    "write_parquet",
]


def exported_records(
    client: ExplainClient, since: datetime | None, until: datetime | None, model_id: str
) -> Iterator[pb.Record]:
    """Every matching record, oldest first, each fetched with its inclusion proof."""
    record_ids: list[str] = []
    token = ""
    while True:
        page = client.list_records(
            model_id=model_id, since=since, until=until, page_size=500, page_token=token
        )
        record_ids += [summary.record_id for summary in page.records]
        token = page.next_page_token
        if not token:
            break
    for record_id in reversed(record_ids):
        yield client.get_record(record_id, include_proof=True)


def _listed_bundle(record: pb.Record) -> dict[str, Any]:
    bundle = bundle_from_record(record)
    bundle.update(
        model_id=record.model_id,
        decision_id=record.decision_id,
        created_at=record.created_at.ToJsonString(),
        retain_until=record.retain_until,
        legal_hold=record.legal_hold,
    )
    return bundle


def write_jsonl(records: Iterable[pb.Record], out: Path) -> int:
    """Writes one bundle (with its listing fields) per line; returns how many."""
    count = 0
    with out.open("w", encoding="utf-8") as sink:
        for record in records:
            sink.write(json.dumps(_listed_bundle(record), separators=(",", ":")) + "\n")
            count += 1
    return count


def parquet_schema(features: Iterable[str]) -> Any:
    """The export's Arrow schema, with a ``shap_<feature>`` column per feature."""
    import pyarrow as pa  # type: ignore[import-untyped]

    from expound.clients.columns import CANDIDATE, DECISION_FIELDS, REASON, TIMESTAMP
    from expound.clients.frames import ATTRIBUTION_PREFIX

    listing = {"record_id", "model_id", "decision_id", "created_at"}
    checkpoint = pa.struct(
        [
            pa.field("log_id", pa.string(), nullable=False),
            pa.field("size", pa.int64(), nullable=False),
            pa.field("root_hash", pa.string(), nullable=False),  # hex
            pa.field("timestamp", pa.string(), nullable=False),  # as signed, RFC 3339
            pa.field("signature", pa.string(), nullable=False),  # hex
            pa.field("key_id", pa.string()),  # hex; null for a checkpoint of the old format
        ]
    )
    return pa.schema(
        [
            pa.field("record_id", pa.string(), nullable=False),
            pa.field("model_id", pa.string(), nullable=False),
            pa.field("decision_id", pa.string(), nullable=False),
            pa.field("created_at", TIMESTAMP, nullable=False),
            pa.field("retain_until", TIMESTAMP),
            pa.field("legal_hold", pa.bool_(), nullable=False),
            pa.field("expired", pa.bool_(), nullable=False),
            *(f for f in DECISION_FIELDS if f.name not in listing),
            *(pa.field(ATTRIBUTION_PREFIX + name, pa.float64()) for name in features),
            pa.field("principal_reasons", pa.list_(REASON)),
            pa.field("candidates", pa.list_(CANDIDATE)),
            pa.field("format", pa.string(), nullable=False),
            pa.field("record", pa.string()),  # canonical JSON, byte for byte; null if expired
            pa.field("leaf_hash", pa.string(), nullable=False),
            pa.field("leaf_index", pa.int64(), nullable=False),
            pa.field("audit_path", pa.list_(pa.string()), nullable=False),
            pa.field("checkpoint", checkpoint, nullable=False),
        ]
    )


def _candidate(candidate: pb.Candidate) -> dict[str, Any]:
    return {
        "rank": candidate.rank,
        "text": candidate.text,
        "deterministic": candidate.deterministic,
        "faithful": candidate.faithful,
        "generator": candidate.generator or None,
        "violations": list(candidate.violations),
        "scores": sorted(candidate.scores.items()),
    }


def _parquet_row(record: pb.Record) -> dict[str, Any]:
    from expound.clients.frames import ATTRIBUTION_PREFIX, decision_row

    bundle = bundle_from_record(record)
    row: dict[str, Any] = {
        "record_id": record.record_id,
        "model_id": record.model_id,
        "decision_id": record.decision_id,
        "created_at": datetime_from_pb(record.created_at),
        "retain_until": parse_utc(record.retain_until) if record.retain_until else None,
        "legal_hold": record.legal_hold,
        "expired": record.expired,
        **{k: bundle[k] for k in ("format", "record", "leaf_hash", "leaf_index", "audit_path")},
        "checkpoint": {"key_id": None, **bundle["checkpoint"]},
    }
    if record.HasField("response"):
        response = record.response
        decision = decision_row(response)
        row.update({k: v for k, v in decision.items() if k not in row})
        for item in decision["attributions"]:
            row[ATTRIBUTION_PREFIX + item["feature"]] = item["contribution"]
        row["principal_reasons"] = [
            {
                "rank": r.rank,
                "code": r.code,
                "text": r.text,
                "neutral_text": r.neutral_text or None,  # null: a record from before it was kept
                "features": list(r.features),
                "contribution": r.contribution,
            }
            for r in response.principal_reasons
        ]
        row["candidates"] = [_candidate(c) for c in response.candidates]
    return row


def write_parquet(records: Iterable[pb.Record], out: Path) -> int:
    """Writes the records as one typed Parquet table; returns how many."""
    import pyarrow as pa
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    rows = [_parquet_row(record) for record in records]
    features: dict[str, None] = {}
    for row in rows:
        for item in row.get("attributions") or ():
            features.setdefault(item["feature"], None)
    pq.write_table(pa.Table.from_pylist(rows, schema=parquet_schema(features)), out)
    return len(rows)


def bundle_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """The proof bundle of one row of the Parquet export (as ``verify_bundle`` takes it)."""
    checkpoint = {k: v for k, v in row["checkpoint"].items() if v is not None}
    return {
        "format": row["format"],
        "record_id": row["record_id"],
        "record": row["record"],
        "leaf_hash": row["leaf_hash"],
        "leaf_index": row["leaf_index"],
        "audit_path": list(row["audit_path"]),
        "checkpoint": checkpoint,
    }


def read_parquet_bundles(path: Path) -> list[dict[str, Any]]:
    """The proof bundles of a Parquet export, in its order."""
    import pyarrow.parquet as pq

    columns = ["format", "record_id", "record", "leaf_hash", "leaf_index", "audit_path"]
    table = pq.read_table(path, columns=[*columns, "checkpoint"])
    return [bundle_from_row(row) for row in table.to_pylist()]
