"""``expound explain-batch``: a table of applicants through ExplainBatch into Parquet, resumable.

The input is a CSV or Parquet file, one row per decision: an id column (``--id-column``,
unique, kept as text) and one column per feature (an empty cell is an explicit null). Each
row is sent as a :class:`BatchItem` whose id is the row's id and whose ``decision_id`` is
that id too, so the archived record can be found by it.

A CSV's cells are text; the model's feature schema (``GetModel``, once before the run)
types them one cell at a time (:mod:`expound.clients.cells`), so a bad cell fails its own
row, with the server's field violation, and no other. A model the server does not know, or
cannot serve, is refused before anything is sent. A caller not allowed to read the model
(or a server without ``GetModel``) gets the cells typed by their look, with a warning.

The output is a Parquet dataset (:mod:`expound.clients.batch_results`): a folder of part
files each written whole, flushed every ``flush_rows`` results or ``flush_seconds``; a kill
loses at most the results not yet flushed. On restart the ids in the existing parts are
skipped (an id is done once it has a row, answered or failed: a failed item's row says
why), so every id is in the output exactly once.

A result lost in a kill was archived all the same. Its retry must not archive the
decision twice, so every item carries an idempotency key derived from the input file,
the model and the row id: the server replays the record it made the first time (same
record id). What-if runs archive nothing and need no key.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import grpc
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
from google.rpc import code_pb2, error_details_pb2, status_pb2

from expound.clients.batch_results import (
    CODE_NAMES,
    BatchInputError,
    PartWriter,
    claim_output,
    done_ids,
    result_row,
)
from expound.clients.cells import FeatureTypes, typed_features
from expound.clients.client import explain_request
from expound.v1 import explain_pb2 as pb

# Statuses that say "not now" rather than "not this item": such an item is sent again.
RETRYABLE = frozenset({code_pb2.RESOURCE_EXHAUSTED, code_pb2.UNAVAILABLE})
DEFAULT_RETRY_S = 1.0


def read_rows(path: Path, id_column: str) -> pd.DataFrame:
    """The input table, ids as text, one row per decision.

    A CSV is read as text, every cell (an empty one is null): :func:`batch_items` types
    the cells by the model's schema. A Parquet file keeps its own types.

    Raises:
        BatchInputError: An unreadable file, a missing id column, empty or repeated ids.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise BatchInputError(f"{path}: expected a .csv or .parquet file")
    except (OSError, ValueError, pa.ArrowException) as error:
        if isinstance(error, BatchInputError):
            raise
        raise BatchInputError(f"{path}: cannot read: {error}") from error
    frame[id_column] = checked_ids(frame, path, id_column)
    return frame


def checked_ids(frame: pd.DataFrame, path: Path, id_column: str) -> pd.Series:
    """The id column of ``frame`` as text, each present and unique.

    Raises:
        BatchInputError: No such column, an empty id, or an id repeated.
    """
    if id_column not in frame.columns:
        raise BatchInputError(
            f"{path}: no id column {id_column!r} (columns: {', '.join(map(str, frame.columns))}); "
            "name it with --id-column"
        )
    ids = frame[id_column]
    if ids.isna().any() or (ids.astype(str).str.len() == 0).any():
        raise BatchInputError(f"{path}: column {id_column!r} has empty ids")
    ids = ids.astype(str)
    repeated = ids[ids.duplicated()].unique()
    if len(repeated):
        shown = ", ".join(repr(i) for i in repeated[:5])
        raise BatchInputError(f"{path}: {len(repeated)} id(s) repeated in {id_column!r}: {shown}")
    return ids


def model_feature_types(
    describe: Callable[[str], pb.ModelInfo], model_id: str
) -> FeatureTypes | None:
    """The model's feature types, by name, from its schema (``GetModel``).

    None when the caller may not read the schema (PERMISSION_DENIED) or the server has no
    ``GetModel`` (UNIMPLEMENTED): the cells are then typed by their look, and a warning on
    stderr says so.

    Raises:
        BatchInputError: The server does not know the model, or cannot serve it.
        grpc.RpcError: Any other failure of the call (the batch would fail alike).
    """
    try:
        info = describe(model_id)
    except grpc.RpcError as error:
        code = error.code() if isinstance(error, grpc.Call) else None
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        if code == grpc.StatusCode.NOT_FOUND:
            raise BatchInputError(f"--model {model_id}: {details}") from error
        if code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNIMPLEMENTED):
            raise
        print(
            f"warning: cannot read the feature types of model {model_id} "
            f"({code.name}: {details}); CSV cells are typed by their look: a text that "
            "reads as a number is sent as a number, true/false as a boolean, anything else "
            "as text",
            file=sys.stderr,
            flush=True,
        )
        return None
    if not info.available:
        raise BatchInputError(
            f"--model {model_id}: unavailable on the server: {info.unavailable_reason}"
        )
    return {feature.name: feature.type for feature in info.features}


def batch_key_prefix(path: Path, model_id: str) -> str:
    """A prefix for the items' idempotency keys: the input's bytes and the model."""
    digest = hashlib.sha256(model_id.encode() + b"\n")
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return f"batch-{digest.hexdigest()[:24]}"


@dataclass
class BatchReport:
    """What one run did."""

    total: int  # rows in the input
    skipped: int  # already in the output
    answered: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # failures by status code
    retried: int = 0  # items sent again after a retryable status
    seconds: float = 0.0


def batch_items(
    rows: pd.DataFrame,
    model_id: str,
    id_column: str,
    skip: set[str],
    what_if: bool,
    key_prefix: str,
    audience: int = 0,
    only: set[str] | None = None,
    types: FeatureTypes | None = None,
) -> Iterator[pb.BatchItem]:
    """The items still to do, in the input's order (``only``: just these ids), their text
    cells typed by ``types`` (the model's feature types; None: by their look)."""
    features = [c for c in rows.columns if c != id_column]
    for record in rows.to_dict("records"):
        item_id = str(record[id_column])
        if item_id in skip or (only is not None and item_id not in only):
            continue
        values = typed_features({str(name): record[name] for name in features}, types)
        key = "" if what_if else f"{key_prefix}-{hashlib.sha256(item_id.encode()).hexdigest()[:32]}"
        yield pb.BatchItem(
            item_id=item_id,
            request=explain_request(
                model_id,
                values,
                decision_id=item_id,
                idempotency_key=key,
                what_if=what_if,
                audience=audience,
            ),
        )


class Window:
    """At most ``size`` items sent and not yet answered: the client's side of the bound."""

    def __init__(self, size: int) -> None:
        self._room = threading.Semaphore(size)
        self._closed = False

    def sending(self, items: Iterable[pb.BatchItem]) -> Iterator[pb.BatchItem]:
        """``items``, each released only when there is room (gRPC reads this on its thread)."""
        for item in items:
            self._room.acquire()
            if self._closed:
                return
            yield item

    def close(self) -> None:
        """Stops sending: the call is over (gRPC's sending thread must not wait forever)."""
        self._closed = True
        self._room.release()

    def answered(self) -> None:
        """One result came back: room for one more item."""
        self._room.release()


class Progress:
    """A tqdm bar on a terminal; elsewhere a plain line on stderr every few seconds."""

    def __init__(self, total: int, done: int, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._total = total
        self._count = done
        self._started = time.monotonic()
        self._printed = self._started
        self._bar: Any = None
        if stream.isatty():
            from tqdm import tqdm  # type: ignore[import-untyped]

            self._bar = tqdm(total=total, initial=done, unit="decision", file=stream)

    def advance(self, failed: int) -> None:
        """One more result (``failed``: failures so far)."""
        self._count += 1
        if self._bar is not None:
            self._bar.update(1)
            return
        now = time.monotonic()
        if now - self._printed >= 2.0 or self._count == self._total:
            self._printed = now
            rate = self._count / max(now - self._started, 1e-9)
            print(
                f"explain-batch: {self._count}/{self._total} done, {failed} failed, {rate:.0f}/s",
                file=self._stream,
                flush=True,
            )

    def close(self) -> None:
        """Ends the bar."""
        if self._bar is not None:
            self._bar.close()


Streamer = Callable[[Iterable[pb.BatchItem]], Iterable[pb.BatchResult]]


def retry_delay_s(status: status_pb2.Status) -> float:
    """The delay a status's RetryInfo asks for (else :data:`DEFAULT_RETRY_S`)."""
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return float(info.retry_delay.ToTimedelta().total_seconds())
    return DEFAULT_RETRY_S


def run_batch(
    stream: Streamer,
    source: Path,
    out: Path,
    model_id: str,
    *,
    id_column: str = "id",
    what_if: bool = False,
    concurrency: int = 16,
    audience: int = 0,
    flush_rows: int = 500,
    flush_seconds: float = 5.0,
    retries: int = 5,
    progress: TextIO | None = sys.stderr,
    describe: Callable[[str], pb.ModelInfo] | None = None,
) -> BatchReport:
    """Explains every row of ``source`` not yet in ``out`` and appends the results there.

    An item answered RESOURCE_EXHAUSTED or UNAVAILABLE (the server was busy) is not
    written: once the stream ends, such items are sent again after the delay their status
    asks for, up to ``retries`` more passes; only then is the status written as their result.

    Args:
        stream: Sends items and yields their results (``ExplainClient.explain_batch``).
        concurrency: Items sent and not yet answered at most (the server bounds its own
            window too, EXPOUND_BATCH_MAX_IN_FLIGHT).
        retries: Passes over the items the server was too busy for.
        progress: Where the progress goes (None: nowhere).
        describe: Reads the model's schema (``ExplainClient.get_model``), whose feature
            types type the text cells; None: they are typed by their look.

    Raises:
        BatchInputError: The input or the output folder cannot be used, or the server
            does not know the model or cannot serve it.
        grpc.RpcError: The call failed as a whole (the results so far are flushed first).
    """
    if concurrency < 1 or flush_rows < 1:
        raise BatchInputError("--concurrency and --flush-rows must be at least 1")
    started = time.perf_counter()
    rows = read_rows(source, id_column)
    skip = done_ids(out)
    # Before the output is claimed: a model the server does not know claims nothing.
    types = model_feature_types(describe, model_id) if describe is not None else None
    claim_output(out, model_id, what_if)
    report = BatchReport(total=len(rows), skipped=len(skip & set(rows[id_column])))
    writer = PartWriter(out, flush_rows, flush_seconds)
    bar = Progress(report.total, report.skipped, progress) if progress is not None else None
    prefix = "" if what_if else batch_key_prefix(source, model_id)
    only: set[str] | None = None  # None: every row not yet done
    try:
        for attempt in range(retries + 1):
            final = attempt == retries
            retry: set[str] = set()
            delay = 0.0
            window = Window(concurrency)
            items = batch_items(
                rows, model_id, id_column, skip, what_if, prefix, audience, only, types
            )
            try:
                for result in stream(window.sending(items)):
                    window.answered()
                    if not final and result.HasField("error") and result.error.code in RETRYABLE:
                        retry.add(result.item_id)
                        delay = max(delay, retry_delay_s(result.error))
                        continue
                    writer.add(result_row(result))
                    if result.HasField("error"):
                        report.failed += 1
                        name = CODE_NAMES.get(result.error.code, str(result.error.code))
                        report.errors[name] = report.errors.get(name, 0) + 1
                    else:
                        report.answered += 1
                    if bar is not None:
                        bar.advance(report.failed)
            finally:
                window.close()
            if not retry:
                break
            report.retried += len(retry)
            only = retry
            writer.flush()  # what is done is on disk before the wait
            time.sleep(delay)
    finally:
        writer.flush()
        if bar is not None:
            bar.close()
        report.seconds = time.perf_counter() - started
    return report


def summary(report: BatchReport) -> str:
    """One line saying what the run did."""
    errors = ", ".join(f"{n} {code}" for code, n in sorted(report.errors.items()))
    rate = (report.answered + report.failed) / report.seconds if report.seconds else 0.0
    retried = f"{report.retried} sent again (server busy); " if report.retried else ""
    return (
        f"{report.answered} answered, {report.failed} failed"
        f"{f' ({errors})' if errors else ''}, {report.skipped} already done of "
        f"{report.total}; {retried}{rate:.0f} decisions/s"
    )
