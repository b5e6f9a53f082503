"""A real server over bad model directories, reloads by RPC while a call is in flight, SIGHUP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from expound.clients.client import ExplainClient, explain_request
from expound.explainers.algorithms import build_explainer
from expound.models.explainer import Explainer, FloatMatrix, RawAttribution
from expound.models.registry import LoadedModel
from expound.pipeline import service as service_module
from expound.server.app import SERVICE_NAME, RunningServer, running_server
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM, LOGISTIC, ROOT
from tests.support.model_dirs import (
    BROKEN_REASONS,
    WrappedExplainer,
    copy_model,
    mixed_models,
    retrained_artifact,
)


def record_model(record: pb.Record) -> tuple[str, str]:
    """The model version and artifact hash an archived record names."""
    response = json.loads(record.canonical_json)["response"]
    return response["model_version"], response["artifact_sha256"]


@pytest.fixture
async def mixed_service(
    settings: Settings, models_dir: Path, tmp_path: Path
) -> AsyncIterator[RunningServer]:
    mixed_models(models_dir, tmp_path / "mixed")
    async with running_server(settings.model_copy(update={"model_dir": tmp_path / "mixed"})) as s:
        yield s


async def test_a_server_over_bad_directories_serves_the_good_ones_and_says_why(
    mixed_service: RunningServer, tmp_path: Path, denied_applicant: dict[str, Any]
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{mixed_service.port}") as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        answer = await stub.Explain(explain_request(GBM, denied_applicant))
        assert answer.prediction.decision == "decline" and answer.record_id

        listed = (await stub.ListModels(pb.ListModelsRequest())).models
        assert [m.model_id for m in listed if m.available] == [GBM, LOGISTIC]
        reasons = {m.model_id: m.unavailable_reason for m in listed if not m.available}
        assert sorted(reasons) == sorted(BROKEN_REASONS)
        for name, pattern in BROKEN_REASONS.items():
            directory = re.escape(str(tmp_path / "mixed" / name))
            assert re.search(rf"^model directory {directory}: {pattern}", reasons[name])

        info = await stub.GetModel(pb.GetModelRequest(model_id="todo-left"))
        assert not info.available and info.unavailable_reason == reasons["todo-left"]
        assert (await stub.GetModel(pb.GetModelRequest(model_id=GBM))).available

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Explain(explain_request("bad-hash", denied_applicant))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert caught.value.details() == f"model bad-hash is unavailable: {reasons['bad-hash']}"

        health = health_pb2_grpc.HealthStub(channel)
        status = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert status.status == health_pb2.HealthCheckResponse.SERVING


class _GatedExplainer(WrappedExplainer):
    """A real explainer that, once armed, holds its call until released."""

    def __init__(self, inner: Explainer) -> None:
        super().__init__(inner)
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def explain_row(self, row: FloatMatrix) -> RawAttribution:
        if self.armed:
            self.entered.set()
            assert self.release.wait(30), "the test never released the call"
        return self._inner.explain_row(row)


def _gated(model: LoadedModel) -> Explainer:
    return _GatedExplainer(build_explainer(model))


async def test_reload_while_a_call_is_in_flight(
    settings: Settings,
    models_dir: Path,
    tmp_path: Path,
    denied_applicant: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "models"
    shutil.copytree(models_dir, root)
    monkeypatch.setattr(service_module, "build_explainer", _gated)
    async with (
        running_server(settings.model_copy(update={"model_dir": root})) as service,
        grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
    ):
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        old = service.registry.get(GBM)
        gate = old.explainer
        assert isinstance(gate, _GatedExplainer)
        gate.armed = True
        in_flight = asyncio.ensure_future(stub.Explain(explain_request(GBM, denied_applicant)))
        assert await asyncio.to_thread(gate.entered.wait, 30)

        digest = retrained_artifact(root / GBM, "2.0.0")
        copy_model(models_dir, root, "gbm-copy")
        shutil.rmtree(root / LOGISTIC)
        report = await stub.ReloadModels(pb.ReloadModelsRequest())
        assert (list(report.added), list(report.changed), list(report.removed)) == (
            ["gbm-copy"],
            [GBM],
            [LOGISTIC],
        )
        assert not in_flight.done()
        gate.release.set()

        started_before = await in_flight
        started_after = await stub.Explain(explain_request(GBM, denied_applicant))
        assert (await stub.Explain(explain_request("gbm-copy", denied_applicant))).record_id
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Explain(explain_request(LOGISTIC, denied_applicant))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND

        before = await stub.GetRecord(pb.GetRecordRequest(record_id=started_before.record_id))
        after = await stub.GetRecord(pb.GetRecordRequest(record_id=started_after.record_id))
        assert record_model(before) == (old.manifest.version, old.manifest.artifact_sha256)
        assert record_model(after) == ("2.0.0", digest)
        assert old.manifest.artifact_sha256 != digest
        # The two calls ran on different artifacts: the changed leaf moves some scores.
        new = service.registry.get(GBM)
        assert new.scorer is not old.scorer
        assert not np.array_equal(new.scorer.raw(old.background), old.scorer.raw(old.background))


async def test_a_reload_with_no_model_left_is_refused_and_changes_nothing(
    settings: Settings, models_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    shutil.copytree(models_dir, root)
    async with (
        running_server(settings.model_copy(update={"model_dir": root})) as service,
        grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
    ):
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        shutil.rmtree(root)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ReloadModels(pb.ReloadModelsRequest())
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert (
            caught.value.details() == f"model directory {root} does not exist (run `make models`)"
        )
        assert len((await stub.ListModels(pb.ListModelsRequest())).models) == 2


@pytest.mark.slow
def test_sighup_reloads_a_subprocess_server(models_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    shutil.copytree(models_dir, root)
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "EXPOUND_LLM_MODE": "off",
        "EXPOUND_HOST": "127.0.0.1",
        "EXPOUND_SIGNING_KEY_PATH": str(tmp_path / "key.pem"),
    }
    command = [sys.executable, "-m", "expound.clients.cli", "serve", "--port", "0"]
    command += ["--model-dir", str(root), "--archive", str(tmp_path / "archive.sqlite3")]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as server:
        try:
            assert server.stdout is not None
            banner = server.stdout.readline()
            port = re.search(r"serving on 127\.0\.0\.1:(\d+)", banner)
            assert port, banner
            with ExplainClient(f"127.0.0.1:{port.group(1)}", timeout=10) as client:
                assert [m.model_id for m in client.list_models()] == [GBM, LOGISTIC]
                copy_model(models_dir, root, "gbm-copy")
                shutil.rmtree(root / LOGISTIC)
                server.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 60
                while [m.model_id for m in client.list_models()] != ["gbm-copy", GBM]:
                    assert time.monotonic() < deadline, "SIGHUP did not reload the models"
                    time.sleep(0.2)
                assert server.poll() is None
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(30) == 0
