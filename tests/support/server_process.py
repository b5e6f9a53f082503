"""The real server as a subprocess (``expound serve``, settings from EXPOUND_* variables)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import ROOT


def free_port() -> int:
    """A loopback port nothing listens on now (for a server that cannot be given port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Starts ``expound serve`` with ``env``, output appended to ``log``; waits until it
    serves on ``EXPOUND_PORT``."""
    with log.open("ab") as output:
        server = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "expound"), "serve"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    # Generous: a cold start on a loaded 2-core machine imports shap, FastAPI and the models.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and server.poll() is None:
        if f"serving on 127.0.0.1:{env['EXPOUND_PORT']}" in log.read_text():
            return server
        time.sleep(0.05)
    server.kill()
    server.wait()
    raise AssertionError(f"server did not start:\n{log.read_text()}")
