"""SHAP and the content plan run in the pipeline's CPU pool, never more at once than it has."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from expound.archive.memory import open_memory
from expound.domain import ExplainRequest
from expound.models.registry import ModelRegistry
from expound.pipeline import explain
from expound.pipeline.explain import Pipeline
from expound.settings import Settings, usable_cores
from tests.conftest import GBM
from tests.support.archive_backends import fixed_signer
from tests.support.pipelines import PIPELINE

CONFIG = replace(PIPELINE, default_candidates=2)


class Probe:
    """Wraps a stage function: which threads ran it, and how many at once at most."""

    def __init__(self, work: Any) -> None:
        self._work = work
        self._lock = threading.Lock()
        self._running = 0
        self.peak = 0
        self.threads: set[str] = set()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._running += 1
            self.peak = max(self.peak, self._running)
            self.threads.add(threading.current_thread().name)
        try:
            time.sleep(0.02)  # long enough that a burst overlaps
            return self._work(*args, **kwargs)
        finally:
            with self._lock:
                self._running -= 1


async def test_a_burst_runs_shap_and_plans_in_the_pool_at_most_its_size_at_once(
    registry: ModelRegistry, denied_applicant: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    decide, plan = Probe(explain.decide), Probe(explain.plan_decision)
    monkeypatch.setattr(explain, "decide", decide)
    monkeypatch.setattr(explain, "plan_decision", plan)
    archive = await open_memory(fixed_signer(Ed25519PrivateKey.generate()))
    with ThreadPoolExecutor(2, thread_name_prefix="cpu-probe") as pool:
        pipeline = Pipeline(registry, archive, CONFIG, cpu_pool=pool)
        request = ExplainRequest(model_id=GBM, features=denied_applicant)
        answers = await asyncio.gather(*[pipeline.explain(request) for _ in range(8)])
    await archive.aclose()
    assert len({answer.record_id for answer in answers}) == 8
    for probe in (decide, plan):
        assert probe.threads and all(name.startswith("cpu-probe") for name in probe.threads)
    assert decide.peak == 2, "a burst of 8 may use both workers and no more"


def test_the_pool_is_sized_to_the_usable_cores_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXPOUND_CPU_WORKERS", raising=False)
    assert Settings().cpu_workers == usable_cores()
    monkeypatch.setenv("EXPOUND_CPU_WORKERS", "3")
    assert Settings().cpu_workers == 3
