"""``expound records export``: records with their proof bundles, as JSON lines or Parquet.

Each exported row is one proof bundle (`expound.clients.bundles`), oldest first, so the
export verifies offline with ``expound archive verify EXPORT.jsonl --public-key PEM``. The
Parquet file holds the same bundles as columns (``audit_path`` a list of hex strings,
``checkpoint`` its JSON text) plus the listing fields for filtering.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from expound.clients.bundles import bundle_from_record
from expound.clients.client import ExplainClient


def exported_bundles(
    client: ExplainClient, since: datetime | None, until: datetime | None, model_id: str
) -> Iterator[dict[str, Any]]:
    """Every matching record's bundle, oldest first, with its listing fields."""
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
        record = client.get_record(record_id, include_proof=True)
        bundle = bundle_from_record(record)
        bundle.update(
            model_id=record.model_id,
            decision_id=record.decision_id,
            created_at=record.created_at.ToJsonString(),
            retain_until=record.retain_until,
            legal_hold=record.legal_hold,
        )
        yield bundle


def write_jsonl(bundles: Iterator[dict[str, Any]], out: Path) -> int:
    """Writes one bundle per line; returns how many."""
    count = 0
    with out.open("w", encoding="utf-8") as sink:
        for bundle in bundles:
            sink.write(json.dumps(bundle, separators=(",", ":")) + "\n")
            count += 1
    return count


def write_parquet(bundles: Iterator[dict[str, Any]], out: Path) -> int:
    """Writes the bundles as a Parquet table; returns how many."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    rows = [dict(bundle, checkpoint=json.dumps(bundle["checkpoint"])) for bundle in bundles]
    schema = pa.schema(
        [
            ("format", pa.string()),
            ("record_id", pa.string()),
            ("record", pa.string()),
            ("leaf_hash", pa.string()),
            ("leaf_index", pa.int64()),
            ("audit_path", pa.list_(pa.string())),
            ("checkpoint", pa.string()),
            ("model_id", pa.string()),
            ("decision_id", pa.string()),
            ("created_at", pa.string()),
            ("retain_until", pa.string()),
            ("legal_hold", pa.bool_()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), out)
    return len(rows)
