"""What a peer sends never reaches the server's log raw (issue 12 item 9).

gRPC's core logged a GOAWAY's debug text as it came (newlines, terminal escapes), so a
client could forge log lines. ``expound serve`` runs here as an operator starts it, in its
own process (gRPC reads its log level on import), and gets such a GOAWAY.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

FORGED = b"\n2026-01-01 00:00:00,000 ERROR expound.server forged line\x1b[31m"


def frame(kind: int, stream: int, payload: bytes) -> bytes:
    """One HTTP/2 frame (RFC 9113 section 4.1), no flags."""
    return (
        struct.pack(">I", len(payload))[1:] + bytes([kind, 0]) + struct.pack(">I", stream) + payload
    )


def send_goaway(port: int, debug_text: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as peer:
        peer.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, b""))
        peer.sendall(frame(7, 0, struct.pack(">II", 0, 2) + debug_text))
        time.sleep(0.5)


@pytest.mark.slow  # a server process of its own: about 6 s
def test_goaway_debug_text_is_not_logged(models_dir: Path, tmp_path: Path) -> None:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("EXPOUND_", "GRPC_"))
    }
    environment |= {
        "PYTHONPATH": str(ROOT),
        "EXPOUND_LLM_MODE": "off",
        "EXPOUND_GRACE_SECONDS": "0",
        "EXPOUND_SIGNING_KEY_PATH": str(tmp_path / "key.pem"),
        "EXPOUND_METRICS_PORT": "0",
    }
    paths = ["--model-dir", str(models_dir), "--archive", str(tmp_path / "a.sqlite3")]
    server = subprocess.Popen(
        [sys.executable, "-m", "expound.clients.cli", "serve", "--port", "0", *paths],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline().decode()
        assert " serving on 127.0.0.1:" in banner, banner
        port = int(banner.split("serving on 127.0.0.1:")[1].split()[0])
        server.stdout.readline()  # security
        suggested = server.stdout.readline().decode().split("try: ", 1)[1].split()
        send_goaway(port, FORGED)
        # The command the banner suggests works as printed.
        assert suggested[0] == ".venv/bin/expound", suggested
        tried = subprocess.run(
            [sys.executable, "-m", "expound.clients.cli", *suggested[1:]],
            env=environment,
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
        assert tried.returncode == 0, tried.stderr.decode()
        assert b"declined" in tried.stdout.lower(), tried.stdout.decode()
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr.decode()
    assert b"forged" not in stderr and b"\x1b" not in stderr, stderr.decode()
    assert b"shutting down" in stderr  # the service's own log is still written
