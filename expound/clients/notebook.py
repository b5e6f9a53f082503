"""From a DataFrame of applicants to a DataFrame of answers, in one call.

:func:`explain_frame` is ``expound explain-batch`` for a notebook: the same stream, bound,
retries and results folder (:mod:`expound.clients.batch`), from a frame instead of a file,
returning the wide frame of :mod:`expound.clients.frames`. Needs the notebook extra.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pandas as pd

from expound.clients.batch import run_batch
from expound.clients.batch_results import read_frame
from expound.clients.client import ExplainClient
from expound.wire import AUDIENCES

__all__ = ["explain_frame"]


def explain_frame(
    client: ExplainClient,
    model_id: str,
    applicants: pd.DataFrame,
    *,
    id_column: str = "",
    audience: str = "applicant",
    what_if: bool = False,
    concurrency: int = 16,
    out: Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Explains every row of ``applicants`` over one ExplainBatch stream.

    Args:
        client: The client to call with.
        model_id: The model every row is explained by.
        applicants: One row per decision, one column per feature (and the id column).
        id_column: The column of unique ids (each row's ``decision_id``); empty: the
            frame's index, as text.
        audience: Who the texts are for (``applicant``, ``analyst``, ``compliance``).
        what_if: Archive nothing (the analyst's role); else every decision is archived,
            and a rerun of the same frame replays its records instead of adding new ones.
        concurrency: Items in flight at most.
        out: A results folder to keep (a rerun resumes there); None: a temporary one.
        progress: Show the progress bar.

    Returns:
        The wide frame, in the input's order, with ``id`` first; failed rows carry
        ``error_code`` and ``error_message`` and nulls for the answer.

    Raises:
        ValueError: An unknown audience, an id column that is missing, empty or repeated.
        grpc.RpcError: The call failed as a whole (e.g. UNAUTHENTICATED).
    """
    if audience not in AUDIENCES:
        raise ValueError(f"audience {audience!r}: one of {', '.join(sorted(AUDIENCES))}")
    rows = _objects_as_text(applicants)
    if not id_column:
        id_column = "id" if "id" not in rows.columns else "__expound_id"
        rows.insert(0, id_column, rows.index.astype(str))
    with tempfile.TemporaryDirectory(prefix="expound-frame-") as scratch:
        # The frame goes through the batch command's own path (a Parquet file), so its
        # checks, idempotency keys (from the file's bytes) and retries are the same.
        source = Path(scratch) / "applicants.parquet"
        rows.to_parquet(source, index=False)
        results = out if out is not None else Path(scratch) / "results"
        run_batch(
            client.explain_batch,
            source,
            results,
            model_id,
            id_column=id_column,
            what_if=what_if,
            concurrency=concurrency,
            audience=AUDIENCES[audience],
            progress=sys.stderr if progress else None,
            describe=client.get_model,
        )
        frame = read_frame(results)
    order = {item_id: n for n, item_id in enumerate(rows[id_column].astype(str))}
    frame = frame[frame["id"].isin(order.keys())]
    return frame.sort_values("id", key=lambda ids: ids.map(order)).reset_index(drop=True)


def _objects_as_text(applicants: pd.DataFrame) -> pd.DataFrame:
    """The frame with every cell of an object column as text (nulls kept).

    A column pandas holds as objects may mix types (numbers and a word: data as it comes),
    which a Parquet column cannot hold. As text, each cell is typed on its own by the
    model's schema (:mod:`expound.clients.cells`), so a bad cell fails its row alone.
    """
    rows = applicants.copy()
    for name in rows.columns:
        if rows[name].dtype == object:
            rows[name] = rows[name].map(lambda cell: None if pd.isna(cell) else str(cell))
    return rows
