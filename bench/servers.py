"""``expound serve`` as a subprocess, for the sections that measure a real server process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.run import MODELS, ROOT


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_serve(
    env: dict[str, str], log: Path, timeout_s: float = 120.0, root: Path = ROOT
) -> tuple[subprocess.Popen[bytes], int]:
    """Starts ``expound serve`` from the checkout ``root`` (default: this one) with ``env``
    over the environment (on a free port, metrics off, output appended to ``log``); returns
    it and its port once it serves.

    Raises:
        RuntimeError: It exited or did not serve within ``timeout_s``.
    """
    port = free_port()
    full = {
        **os.environ,
        "PYTHONPATH": str(root),
        **env,
        "EXPOUND_PORT": str(port),
        "EXPOUND_METRICS_PORT": "0",
    }
    with log.open("ab") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "expound.clients.cli", "serve"],
            env=full,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
    deadline = time.monotonic() + timeout_s
    while f"serving on 127.0.0.1:{port}" not in log.read_text():
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"{root}: server did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)
    return server, port


def start_llm_off_server(workdir: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """``expound serve`` on the demo models, LLM drafting off, a fresh archive in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "server.log"
    env = {
        "EXPOUND_HOST": "127.0.0.1",
        "EXPOUND_MODEL_DIR": str(MODELS),
        "EXPOUND_ARCHIVE_PATH": str(workdir / "archive.sqlite3"),
        "EXPOUND_SIGNING_KEY_PATH": str(workdir / "signing-key.pem"),
        "EXPOUND_LLM_MODE": "off",
    }
    server, port = start_serve(env, log)
    return server, port, log


def run_client(args: list[str]) -> dict[str, Any]:
    """Runs one client process; its wall time, peak RSS and stderr."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    errors = process.stderr.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{args[:4]} exited {process.returncode}:\n{errors[-2000:]}")
    # ru_maxrss is in KiB on Linux.
    return {"seconds": seconds, "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "log": errors}
