"""Starts the real embedded vLLM CPU server for a test session.

``EXPOUND_TEST_LLM_URL`` points the tests at a server that is already running instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server_process import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 420


def _warm_up(url: str) -> None:
    """The first request with logprobs compiles sampler kernels (~25 s cold); do it once here."""
    body = {
        "model": "gemma-3-270m",
        "prompt": "The loan",
        "max_tokens": 4,
        "n": 2,
        "seed": 1,
        "logprobs": 1,
        "structured_outputs": {"grammar": 'root ::= " was declined." | " was approved."'},
    }
    httpx.post(f"{url}/v1/completions", json=body, timeout=300).raise_for_status()


@contextlib.contextmanager
def embedded_vllm(log_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A fresh embedded vLLM server, healthy and warmed up: its base URL and process (in a
    session of its own, so a test can kill it with its workers); stopped on exit."""
    if not (ROOT / ".venv-vllm" / ".expound-ready").is_file():
        pytest.fail("the embedded vLLM environment is missing: run `make vllm` (make test does)")
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "serve_vllm.sh")],
            env={**os.environ, "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"vLLM exited with {process.returncode}:\n{log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"vLLM not healthy after {START_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(1)
        _warm_up(url)
        yield url, process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stops a server started by :func:`embedded_vllm` and its workers (SIGKILL: at once)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def vllm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a healthy vLLM server with the bundled model."""
    external = os.environ.get("EXPOUND_TEST_LLM_URL")
    if external:
        yield external
        return
    with embedded_vllm(tmp_path_factory.mktemp("vllm") / "vllm.log") as (url, _):
        yield url
