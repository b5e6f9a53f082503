"""The results of ``expound explain-batch``: typed rows in a folder of Parquet parts.

Each part is written whole to a temporary name, synced and renamed into place, so a part is
either all there or absent; a kill leaves at most a temporary file, removed on the next
run. The ids in the parts are what a resumed run skips.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from google.rpc import code_pb2, error_details_pb2, status_pb2

from expound.clients.columns import DECISION_FIELDS
from expound.clients.frames import decision_row, rows_to_frame
from expound.v1 import explain_pb2 as pb

# The Parquet columns of one result, typed (the decision's columns are the export's): a
# failed item has nulls where an answer would be.
RESULT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        *DECISION_FIELDS,
        pa.field("error_code", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("error_fields", pa.list_(pa.string())),  # "field: description" each
    ]
)
PART_GLOB = "part-*.parquet"
CODE_NAMES = {number: name for name, number in code_pb2.Code.items()}


class BatchInputError(ValueError):
    """The input or output cannot be used; the message names the file and what is wrong."""


RUN_FILE = "_batch.json"
"""The folder's run marker. Parquet readers (pyarrow, so pandas; DuckDB; Spark) skip files
whose names start with "_" or ".", so ``pandas.read_parquet(out)`` reads the folder."""
LEGACY_RUN_FILE = "batch.json"
"""The marker's name before: Parquet readers tried to read it as a part and failed."""


def claim_output(out: Path, model_id: str, what_if: bool) -> None:
    """Marks ``out`` as the results of ``model_id`` (what-if or not), or checks it is.

    A resumed run must add to results of the same kind: archived decisions and what-if
    answers, or two models' answers, never share a folder.

    Raises:
        BatchInputError: ``out`` holds results of another model or of the other mode.
    """
    wanted = {"model_id": model_id, "what_if": what_if}
    marker = out / RUN_FILE
    if (out / LEGACY_RUN_FILE).exists() and not marker.exists():
        (out / LEGACY_RUN_FILE).rename(marker)
    if marker.exists():
        found = json.loads(marker.read_text(encoding="utf-8"))
        if found != wanted:
            raise BatchInputError(
                f"{out}: holds results of model {found.get('model_id')!r} "
                f"(what-if: {found.get('what_if')}); this run is {model_id!r} "
                f"(what-if: {what_if}): choose another --out"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(wanted) + "\n", encoding="utf-8")


def done_ids(out: Path) -> set[str]:
    """The ids already in the output dataset (none when it does not exist yet).

    Raises:
        BatchInputError: ``out`` exists and is not a folder of result parts.
    """
    if not out.exists():
        return set()
    if not out.is_dir():
        raise BatchInputError(f"{out}: exists and is not a results folder")
    ids: set[str] = set()
    for part in sorted(out.glob(PART_GLOB)):
        ids.update(pq.read_table(part, columns=["id"]).column("id").to_pylist())
    return ids


def _violations(status: status_pb2.Status) -> list[str]:
    found = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found += [f"{v.field}: {v.description}" for v in bad.field_violations]
    return found


def result_row(result: pb.BatchResult) -> dict[str, Any]:
    """One output row from one result."""
    if result.HasField("error"):
        return {
            "id": result.item_id,
            "error_code": CODE_NAMES.get(result.error.code, str(result.error.code)),
            "error_message": result.error.message,
            "error_fields": _violations(result.error),
        }
    return {
        "id": result.item_id,
        **decision_row(result.response),
        "error_code": None,
        "error_message": None,
        "error_fields": None,
    }


class PartWriter:
    """Writes result rows into a Parquet dataset folder, one whole part at a time."""

    def __init__(self, out: Path, flush_rows: int, flush_seconds: float) -> None:
        self._out = out
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self._rows: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        out.mkdir(parents=True, exist_ok=True)
        for leftover in out.glob(".part-*.tmp"):  # a part a kill interrupted: never renamed
            leftover.unlink()
        # Part names are not reused across runs: a resumed run adds after the last one.
        taken = [int(p.stem.split("-")[1]) for p in out.glob(PART_GLOB) if p.stem[5:].isdigit()]
        self._next = max(taken, default=-1) + 1

    def add(self, row: dict[str, Any]) -> None:
        """Adds a row; writes a part when enough rows or time have gathered."""
        self._rows.append(row)
        if (
            len(self._rows) >= self._flush_rows
            or time.monotonic() - self._last_flush >= self._flush_seconds
        ):
            self.flush()

    def flush(self) -> None:
        """Writes the gathered rows as one part (atomically: temporary file, then rename)."""
        self._last_flush = time.monotonic()
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=RESULT_SCHEMA)
        final = self._out / f"part-{self._next:05d}.parquet"
        temporary = self._out / f".{final.name}.{uuid.uuid4().hex}.tmp"
        pq.write_table(table, temporary)
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, final)
        directory = os.open(self._out, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
        self._next += 1
        self._rows = []


def read_results(out: Path) -> pd.DataFrame:
    """The output dataset as one DataFrame, as written (attributions nested)."""
    parts = sorted(out.glob(PART_GLOB))
    if not parts:
        return RESULT_SCHEMA.empty_table().to_pandas()
    # Parts written before a column was added lack it: it reads back as nulls.
    tables = [pq.read_table(p) for p in parts]
    return pa.concat_tables(tables, promote_options="default").to_pandas()


def read_frame(out: Path) -> pd.DataFrame:
    """The output dataset as the wide frame of :mod:`expound.clients.frames`: one
    ``shap_<feature>`` and ``value_<feature>`` column per feature, ready for
    :func:`expound.clients.frames.to_explanation` and the cohort plots."""
    parts = sorted(out.glob(PART_GLOB))
    tables = [pq.read_table(p) for p in parts]
    if not tables:
        return rows_to_frame([])
    return rows_to_frame(pa.concat_tables(tables, promote_options="default").to_pylist())
