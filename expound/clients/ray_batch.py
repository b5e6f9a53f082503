"""``expound explain-batch --engine ray``: a portfolio through the explain service on Ray.

Where the default engine streams rows to one server over gRPC, this one takes the server
out of the path. Ray Data reads the input (CSV or Parquet, block by block, on the cluster),
drops the ids already in the output, and hands blocks to explain workers: one actor per
worker, each running the whole service in its own process (:func:`running_service`: the
models, the archive, drafting and ranking), exactly as a replica does. Every worker appends
to the one archive through the archive's contract, so the log has one sequence whatever the
number of workers (the engine sequences each append under the log's write lock: SQLite's
``BEGIN IMMEDIATE`` on one machine, PostgreSQL's advisory lock across machines).

The driver gathers the result rows as they come and writes them with the same
:class:`PartWriter` as the gRPC engine, so the output folder, the resume rule (the ids in
it are skipped) and the idempotency keys (input bytes, model, row id: a row archived but
lost in a kill is replayed, not archived twice) are the same. After the last block the
driver publishes a checkpoint, so every record written is covered by a signed checkpoint.

The workers hold the archive's credentials (its file or DSN and the signing key): this is
an operator's tool, run where the service's settings are, not a caller's. Records name the
principal given with ``--principal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from expound.archive.factory import open_archive
from expound.archive.signing import publish_final
from expound.clients.batch import (
    BatchReport,
    Progress,
    batch_items,
    batch_key_prefix,
    checked_ids,
    retry_delay_s,
)
from expound.clients.batch_results import (
    RESULT_SCHEMA,
    BatchInputError,
    PartWriter,
    claim_output,
    done_ids,
    result_row,
)
from expound.clients.cells import FeatureTypes
from expound.errors import ModelNotFound, Overloaded, ServiceError
from expound.models.registry import ModelRegistry, UnavailableModel
from expound.pipeline.service import Service, load_models, running_service
from expound.server import convert
from expound.server.errors import internal_status, status_for
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb

DEFAULT_PRINCIPAL = "ray-batch"
# Rows per block handed to a worker: large enough that a block's Ray overhead (a few ms) is
# small beside its decisions (a few ms each), small enough to spread a modest file.
DEFAULT_BLOCK_ROWS = 64
# Reading and filtering blocks is light beside explaining them: a fraction of a CPU each, so
# they run beside the workers (one CPU each) instead of waiting for one to end.
LIGHT_CPUS = 0.25
# An item shed by a worker's own admission is tried again this many times.
OVERLOAD_RETRIES = 5


@dataclass(frozen=True)
class Job:
    """What every worker needs to know: the service settings and the run's parameters."""

    settings: dict[str, Any]  # Settings, as JSON (paths already absolute)
    model_id: str
    id_column: str
    what_if: bool
    key_prefix: str
    audience: int
    principal: str
    concurrency: int  # decisions in flight per worker


def csv_header(source: Path) -> list[str]:
    """The column names of a CSV file (pyarrow reads its first block to learn them)."""
    with pa_csv.open_csv(source) as reader:
        return list(reader.schema.names)


def csv_convert_options(
    names: list[str], columns: list[str] | None = None
) -> pa_csv.ConvertOptions:
    """Every column read as text: the model's schema types the cells, one at a time
    (:mod:`expound.clients.cells`), where pyarrow's inference would type a column by its
    first block and fail the whole read on a later cell that does not fit. An empty cell
    is an explicit null, as with pandas; nothing else is ("NA" is a text)."""
    return pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        null_values=[""],
        strings_can_be_null=True,
        include_columns=columns,
    )


def input_ids(source: Path, id_column: str) -> pd.Series:
    """The input's ids, checked as the gRPC engine checks them (only that column is read).

    Raises:
        BatchInputError: An unreadable file, a missing id column, empty or repeated ids.
    """
    suffix = source.suffix.lower()
    try:
        if suffix == ".csv":
            names = csv_header(source)
            if id_column not in names:
                frame = pd.DataFrame(columns=names)
            else:
                options = csv_convert_options(names, [id_column])
                frame = pa_csv.read_csv(source, convert_options=options).to_pandas()
        elif suffix in (".parquet", ".pq"):
            schema = pq.read_schema(source)
            if id_column not in schema.names:
                frame = pd.DataFrame(columns=schema.names)
            else:
                frame = pq.read_table(source, columns=[id_column]).to_pandas()
        else:
            raise BatchInputError(f"{source}: expected a .csv or .parquet file")
    except (OSError, pa.ArrowException) as error:
        raise BatchInputError(f"{source}: cannot read: {error}") from error
    return checked_ids(frame, source, id_column)


def model_types(registry: ModelRegistry, model_id: str) -> FeatureTypes | None:
    """The feature types of the model's manifest, which type the CSV's text cells; None
    for a model the registry cannot serve (every row is refused then, whatever its cells)."""
    try:
        model = registry.describe(model_id)
    except ModelNotFound:
        return None
    if isinstance(model, UnavailableModel):
        return None
    return {spec.name: spec.type for spec in model.manifest.features}


class ExplainWorker:
    """A Ray Data actor: the explain service in this process, one block of rows per call."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self._loop = asyncio.new_event_loop()
        self._stack = contextlib.AsyncExitStack()
        settings = Settings(**job.settings)
        self._service: Service = self._loop.run_until_complete(
            self._stack.enter_async_context(running_service(settings, load_models(settings)))
        )
        self._room = asyncio.Semaphore(job.concurrency)
        self._types = model_types(self._service.registry, job.model_id)

    def __call__(self, rows: pd.DataFrame) -> pa.Table:
        """The result rows (the output's schema) of one block of input rows."""
        job = self._job
        items = list(
            batch_items(
                rows,
                job.model_id,
                job.id_column,
                set(),
                job.what_if,
                job.key_prefix,
                job.audience,
                types=self._types,
            )
        )
        # Ray calls from a thread of its own: the loop is driven here, one block at a time.
        results = self._loop.run_until_complete(self._results(items))
        return pa.Table.from_pylist([result_row(r) for r in results], schema=RESULT_SCHEMA)

    async def _results(self, items: list[pb.BatchItem]) -> list[pb.BatchResult]:
        return list(await asyncio.gather(*(self._result(item) for item in items)))

    async def _result(self, item: pb.BatchItem) -> pb.BatchResult:
        """One item's answer, or the status its ExplainBatch item would have had."""
        async with self._room:
            for attempt in range(OVERLOAD_RETRIES + 1):
                request_id = str(uuid.uuid4())
                try:
                    explanation = await self._service.pipeline.explain(
                        convert.explain_request_from_pb(item.request),
                        time_left_s=None,
                        request_id=request_id,
                        principal=self._job.principal,
                        what_if=item.request.what_if,
                    )
                    response = convert.explanation_to_pb(
                        explanation, archived=not item.request.what_if
                    )
                    return pb.BatchResult(item_id=item.item_id, response=response)
                except Overloaded as error:
                    if attempt == OVERLOAD_RETRIES:
                        return pb.BatchResult(
                            item_id=item.item_id, error=status_for(error, request_id)
                        )
                    await asyncio.sleep(retry_delay_s(status_for(error, request_id)))
                except ServiceError as error:
                    return pb.BatchResult(item_id=item.item_id, error=status_for(error, request_id))
                except Exception:  # one bad row never ends the run: its row says INTERNAL
                    return pb.BatchResult(item_id=item.item_id, error=internal_status(request_id))
        raise AssertionError("unreachable")

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.run_until_complete(self._stack.aclose())
            self._loop.close()


def _not_done(rows: pd.DataFrame, id_column: str, skip: frozenset[str]) -> pd.DataFrame:
    """The rows whose ids the output does not hold yet (a resumed run skips the others)."""
    return rows[~rows[id_column].astype(str).isin(skip)]


def _result_blocks(
    source: Path, job: Job, skip: frozenset[str], workers: int, block_rows: int
) -> Iterator[pa.Table]:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    if source.suffix.lower() == ".csv":
        dataset = ray.data.read_csv(
            str(source),
            convert_options=csv_convert_options(csv_header(source)),
            num_cpus=LIGHT_CPUS,
        )
    else:
        dataset = ray.data.read_parquet(str(source), num_cpus=LIGHT_CPUS)
    if skip:
        dataset = dataset.map_batches(
            functools.partial(_not_done, id_column=job.id_column, skip=skip),
            batch_format="pandas",
            num_cpus=LIGHT_CPUS,
        )
    dataset = dataset.map_batches(
        ExplainWorker,
        fn_constructor_kwargs={"job": job},
        batch_size=block_rows,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
    )
    yield from dataset.iter_batches(batch_size=None, batch_format="pyarrow")


async def _publish_final(settings: Settings) -> None:
    """A checkpoint covering everything the workers appended (reads never sign)."""
    archive = await open_archive(settings)
    try:
        await publish_final(archive.publish_checkpoint)
    finally:
        await archive.aclose()


def run_ray_batch(
    settings: Settings,
    source: Path,
    out: Path,
    model_id: str,
    *,
    workers: int = 2,
    address: str | None = None,
    id_column: str = "id",
    what_if: bool = False,
    audience: int = 0,
    principal: str = DEFAULT_PRINCIPAL,
    concurrency: int = 8,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    flush_rows: int = 500,
    flush_seconds: float = 5.0,
    progress: TextIO | None = sys.stderr,
) -> BatchReport:
    """Explains every row of ``source`` not yet in ``out`` on a Ray cluster.

    Args:
        settings: the service's settings (models, archive, LLM), as ``expound serve`` reads
            them; each worker runs the service on them.
        workers: explain workers (actors, one CPU each).
        address: a running Ray cluster ("ray://host:10001" or "auto"); None starts a local
            one with ``workers`` CPUs for this run.
        concurrency: decisions in flight per worker.

    Raises:
        BatchInputError: The input or the output folder cannot be used.
    """
    if workers < 1 or concurrency < 1 or block_rows < 1 or flush_rows < 1:
        raise BatchInputError("--workers, --concurrency and --flush-rows must be at least 1")
    import ray

    started = time.perf_counter()
    ids = input_ids(source, id_column)
    skip = done_ids(out)
    claim_output(out, model_id, what_if)
    report = BatchReport(total=len(ids), skipped=int(ids.isin(skip).sum()))
    job = Job(
        settings=settings.model_dump(mode="json"),
        model_id=model_id,
        id_column=id_column,
        what_if=what_if,
        key_prefix="" if what_if else batch_key_prefix(source, model_id),
        audience=audience,
        principal=principal,
        concurrency=concurrency,
    )
    writer = PartWriter(out, flush_rows, flush_seconds)
    bar = Progress(report.total, report.skipped, progress) if progress is not None else None
    local = address is None
    if local:
        # One CPU per worker, and one for reading and the driver's share.
        ray.init(num_cpus=workers + 1, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)
    try:
        if report.skipped < report.total:
            for block in _result_blocks(source, job, frozenset(skip), workers, block_rows):
                for row in block.to_pylist():
                    writer.add(row)
                    if row["error_code"] is None:
                        report.answered += 1
                    else:
                        report.failed += 1
                        report.errors[row["error_code"]] = (
                            report.errors.get(row["error_code"], 0) + 1
                        )
                    if bar is not None:
                        bar.advance(report.failed)
    finally:
        writer.flush()
        if bar is not None:
            bar.close()
        ray.shutdown()
    if not what_if and report.answered:
        asyncio.run(_publish_final(settings))
    report.seconds = time.perf_counter() - started
    return report
