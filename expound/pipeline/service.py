"""The explain service without a front end: models, archive, language stages and pipeline,
built from settings and stopped in order.

The gRPC server (:mod:`expound.server.app`) serves it; a portfolio batch on Ray
(:mod:`expound.pipeline.ray_batch`) runs one in each worker process. Both get the same
stages, the same archive contract and the same checkpoint schedule from this one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import expound
from expound.archive.engine import LogArchive
from expound.archive.factory import open_archive
from expound.archive.signing import publish_checkpoints, publish_final
from expound.errors import ArchiveUnavailable, ModelIntegrityError, StartupError
from expound.explainers.algorithms import build_explainer
from expound.models.registry import ModelRegistry
from expound.observability.hooks import NO_OBSERVER, Observer
from expound.pipeline.assembly import LanguageStages, language_stages
from expound.pipeline.explain import Pipeline, PipelineConfig
from expound.settings import Settings


@dataclass
class Service:
    """A started service: its models, archive, language stages (None: LLM off), pipeline."""

    registry: ModelRegistry
    archive: LogArchive
    language: LanguageStages | None
    pipeline: Pipeline


def load_models(settings: Settings) -> ModelRegistry:
    """The model directory, loaded (a model that fails is reported unavailable).

    Raises:
        StartupError: The directory itself cannot be used.
    """
    try:
        return ModelRegistry.from_directory(settings.model_dir, build_explainer)
    except ModelIntegrityError as error:
        raise StartupError(f"EXPOUND_MODEL_DIR: {error}") from error


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings, registry: ModelRegistry, observer: Observer = NO_OBSERVER
) -> AsyncIterator[Service]:
    """Opens the archive, starts its checkpoint schedule and the language stages, and
    builds the pipeline; on exit closes them in reverse (the LLM backend before the
    archive, whose last entries are covered by a checkpoint before it closes).

    Raises:
        StartupError: The archive, its signing key or the LLM's CA file cannot be used.
    """
    async with contextlib.AsyncExitStack() as backends:
        try:
            archive = await open_archive(settings)
        except (ArchiveUnavailable, OSError, ValueError, sqlite3.DatabaseError) as error:
            # A DSN may hold a password: named by its setting, never quoted.
            where = (
                "EXPOUND_ARCHIVE_DSN"
                if settings.archive_backend == "postgres"
                else f"EXPOUND_ARCHIVE_PATH {settings.archive_path}"
            )
            raise StartupError(
                f"cannot open the archive ({where}, "
                f"EXPOUND_SIGNING_KEY_PATH {settings.signing_key_path}): {error}"
            ) from error
        backends.push_async_callback(archive.aclose)
        # Reads never sign: checkpoints follow the writer's schedule, and the last entries
        # are covered before the archive closes.
        backends.push_async_callback(publish_final, archive.publish_checkpoint)
        checkpoints = asyncio.create_task(
            publish_checkpoints(archive.publish_checkpoint, settings.checkpoint_every_seconds)
        )
        backends.push_async_callback(cancel_task, checkpoints)
        try:
            language = await backends.enter_async_context(language_stages(settings, observer))
        except ValueError as error:  # EXPOUND_LLM_CA_FILE cannot be used
            raise StartupError(str(error)) from error
        # SHAP and plans on their own threads, one per core: never queued behind (or
        # ahead of) the archive's thread hops in the loop's default executor.
        cpu_pool = ThreadPoolExecutor(settings.cpu_workers, thread_name_prefix="expound-cpu")
        backends.callback(cpu_pool.shutdown, cancel_futures=True)
        pipeline = Pipeline(
            registry,
            archive,
            PipelineConfig(
                service_version=expound.__version__,
                default_candidates=settings.default_candidates,
                max_candidates=settings.max_candidates,
                default_seed=settings.default_seed,
                additivity_tolerance=settings.additivity_tolerance,
                max_question_chars=settings.max_question_chars,
                max_concurrent_explains=settings.max_concurrent_explains,
                max_llm_calls=settings.llm_max_concurrency + settings.llm_max_queue,
                retry_after_s=settings.retry_after_s,
            ),
            drafter=language.drafter if language else None,
            ranker=language.ranker if language else None,
            observer=observer,
            cpu_pool=cpu_pool,
        )
        yield Service(registry, archive, language, pipeline)


async def cancel_task(task: asyncio.Task[None]) -> None:
    """Cancels a background task and waits for it to end (an exit-stack callback)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
