"""Explain CPU per call, two checkouts side by side: ``expound serve`` from each, one client.

Each checkout's server runs as its own process (LLM off, metrics off, SQLite, group commit
on), both at once, and the same grpc.aio client drives them in alternating rounds, so the
machine's other load falls on both alike. Besides the figures of the ``overhead`` section of
:mod:`bench.scale_bench` (calls/s, total and non-SHAP p50/p99), each server's own CPU time
(user + system, from ``/proc``) is read around every round: ``server_cpu_ms_per_call`` is
what one call costs the service, whatever the client and the other server cost.

Usage::

    python -m bench.compare_serve BEFORE_ROOT AFTER_ROOT [--clients 1,8,32] [--rounds 3]

where each root is a checkout (``git worktree add`` or ``git archive | tar -x``) of the
revision to measure; the models are this checkout's ``artifacts/models``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.run import MODELS
from bench.scale_bench import CALLS, side_by_side
from bench.servers import start_serve


def _serve(root: Path, workdir: Path, name: str) -> tuple[subprocess.Popen[bytes], int]:
    """``expound serve`` from checkout ``root``; returns it and its port once it serves."""
    env = {
        "EXPOUND_LLM_MODE": "off",
        "EXPOUND_RANKER_EMBEDDER": "hashing",
        "EXPOUND_MODEL_DIR": str(MODELS),
        "EXPOUND_ARCHIVE_PATH": str(workdir / f"{name}.sqlite3"),
        "EXPOUND_SIGNING_KEY_PATH": str(workdir / f"{name}-key.pem"),
    }
    return start_serve(env, workdir / f"{name}.log", timeout_s=90, root=root)


async def compare(
    roots: list[Path], clients: list[int], rounds: int, workdir: Path
) -> dict[str, Any]:
    """Figures per checkout and client count, the servers driven in alternation."""
    servers = [_serve(root, workdir, f"s{n}") for n, root in enumerate(roots)]
    try:
        return await side_by_side(
            {
                str(root): (server.pid, port)
                for root, (server, port) in zip(roots, servers, strict=True)
            },
            clients,
            rounds,
        )
    finally:
        for server, _ in servers:
            server.terminate()
            server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("roots", nargs="+", type=Path, help="checkouts to compare")
    parser.add_argument("--clients", default="1,8,32", help="comma-separated client counts")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per client count")
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    unknown = [c for c in clients if c not in CALLS]
    if unknown:
        parser.error(f"client counts must be among {sorted(CALLS)}")
    with tempfile.TemporaryDirectory(prefix="expound-compare-") as folder:
        figures = asyncio.run(compare(args.roots, clients, args.rounds, Path(folder)))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
