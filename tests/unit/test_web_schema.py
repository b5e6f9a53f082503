"""schemathesis against the HTTP face's own OpenAPI document, on a real server process.

``expound serve`` runs with static tokens and serves HTTP beside gRPC on a real socket; the
schema is read from its ``/openapi.json``. Every operation gets generated requests, valid
and invalid, sent by a principal holding every role (so calls get past the role check into
the endpoints) and by none (so 401 is exercised too). Each answer must be no 5xx, a status
the document lists for that operation, with the documented content type and a body
matching the documented schema.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.security import ROLES, write_policy, write_tokens
from tests.support.server_process import free_port, start_server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Served:
    base: str
    token: str


@pytest.fixture(scope="module")
def served(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("web-schema")
    tokens = write_tokens(home / "tokens", ["everyone"])
    policy = write_policy(home / "policy.toml", {"everyone": list(ROLES)})
    http_port = free_port()
    env = {
        **os.environ,
        "EXPOUND_PORT": str(free_port()),
        "EXPOUND_HTTP_PORT": str(http_port),
        "EXPOUND_MODEL_DIR": str(models_dir),
        "EXPOUND_ARCHIVE_PATH": str(home / "archive.sqlite3"),
        "EXPOUND_SIGNING_KEY_PATH": str(home / "signing-key.pem"),
        "EXPOUND_CHECKPOINT_EVERY_RECORDS": "1",
        "EXPOUND_TOKENS_FILE": str(home / "tokens"),
        "EXPOUND_POLICY_FILE": str(policy),
        "EXPOUND_LLM_MODE": "off",
        "EXPOUND_RANKER_EMBEDDER": "hashing",
    }
    server = start_server(env, home / "server.log")
    try:
        yield Served(f"http://127.0.0.1:{http_port}", tokens["everyone"])
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    log = (home / "server.log").read_text()
    # No unexpected error was swallowed into a 500 along the way.
    assert "unexpected error" not in log, log[-4000:]


def operations(served: Served) -> list[APIOperation]:
    schema = schemathesis.openapi.from_url(f"{served.base}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 13  # every RPC but the batch stream, and reload
    return found


def fuzz(operation: APIOperation, examples: int, headers: dict[str, str]) -> list[int]:
    """Sends ``examples`` generated requests to ``operation``, checking each answer."""
    statuses: list[int] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
        statuses.append(response.status_code)

    check()
    return statuses


@pytest.mark.parametrize(
    "examples", [pytest.param(8, id="quick"), pytest.param(150, id="long", marks=pytest.mark.slow)]
)
def test_every_operation_answers_only_documented_statuses_and_bodies(
    served: Served, examples: int
) -> None:
    everyone = {"authorization": f"Bearer {served.token}"}
    answered: set[int] = set()
    for operation in operations(served):
        answered.update(fuzz(operation, examples, everyone))
    # The generated requests reached the endpoints: answers and refusals of bad input.
    assert {200, 400} <= answered


def test_without_a_token_every_operation_answers_a_documented_401(served: Served) -> None:
    for operation in operations(served):
        statuses = fuzz(operation, 4, {})
        # Malformed JSON is refused (400) before the credential is looked at.
        assert set(statuses) <= {400, 401} and 401 in statuses, (operation.label, statuses)
