"""``expound serve`` as a subprocess, for the sections that measure a real server process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.run import ROOT


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_serve(
    env: dict[str, str], log: Path, timeout_s: float = 120.0
) -> tuple[subprocess.Popen[bytes], int]:
    """Starts ``expound serve`` from this checkout with ``env`` over the environment (on a
    free port, metrics off, output appended to ``log``); returns it and its port once it
    serves.

    Raises:
        RuntimeError: It exited or did not serve within ``timeout_s``.
    """
    port = free_port()
    full = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
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
            cwd=ROOT,
        )
    deadline = time.monotonic() + timeout_s
    while f"serving on 127.0.0.1:{port}" not in log.read_text():
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"server did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)
    return server, port
