"""Shared fixtures: demo models trained once per session, a real server on port 0."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from expound.explainers.algorithms import build_explainer
from expound.models.registry import ModelRegistry
from expound.models.training import build_demo_models
from expound.server.app import RunningServer, running_server
from expound.settings import Settings
from expound.v1 import explain_pb2_grpc
from tests.support.archive_backends import (  # noqa: F401  (the PostgreSQL fixtures)
    postgres_roles,
    postgres_server,
    postgresql,
    postgresql_proc,
)

# The real vLLM server fixture (``vllm_url``) for the integration tests.
pytest_plugins = ["tests.support.vllm_server"]

# Metrics are served on a fixed port by default (9464): a test server, in this process or a
# child (`expound serve`), serves none unless its test asks, so parallel runs never collide.
os.environ.setdefault("EXPOUND_METRICS_PORT", "0")
# Likewise the HTTP face (8080 by default): a test that wants it sets a free port.
os.environ.setdefault("EXPOUND_HTTP_PORT", "0")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GBM = "german-credit-gbm"
LOGISTIC = "german-credit-logistic"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two demo models, trained from the shipped CSV into a fresh directory."""
    out = tmp_path_factory.mktemp("models")
    build_demo_models(ROOT / "data" / "german_credit.csv", out)
    return out


@pytest.fixture(scope="session")
def registry(models_dir: Path) -> ModelRegistry:
    return ModelRegistry.from_directory(models_dir, build_explainer)


@pytest.fixture
def denied_applicant() -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / "applicant_denied.json").read_text()))


@pytest.fixture
def approved_applicant() -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / "applicant_approved.json").read_text()))


@pytest.fixture
def settings(models_dir: Path, tmp_path: Path) -> Settings:
    return Settings(
        host="127.0.0.1",
        port=0,
        model_dir=models_dir,
        archive_path=tmp_path / "archive.sqlite3",
        signing_key_path=tmp_path / "archive-signing-key.pem",
        reflection=True,
        grace_seconds=0.5,
        # Every append signs a checkpoint, so proofs are ready at once (reads never sign).
        checkpoint_every_records=1,
        # Drafting has its own tests (fake generator; real vLLM in test_vllm_integration).
        llm_mode="off",
        # A test that turns drafting on counts its own LLM requests: no startup warm-up
        # (tests/unit/test_warmup.py tests it).
        llm_warmup=False,
    )


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[RunningServer]:
    """A real server on a real loopback socket, with its own archive."""
    async with running_server(settings) as running:
        yield running


@pytest.fixture
async def channel(service: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as chan:
        yield chan


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> explain_pb2_grpc.ExplainServiceStub:
    return explain_pb2_grpc.ExplainServiceStub(channel)
