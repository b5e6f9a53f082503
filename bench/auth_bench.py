"""``auth`` section of ``make bench`` (issue 11): what TLS + token authentication costs.

Two servers in this process on the models ``make models`` built (LLM drafting off, SQLite
archives under var/): one plaintext without authentication, as ``make run`` serves on
loopback; one with TLS (a test CA made for the run) and static bearer tokens checked
against the policy. Explain is called on both in the same run, interleaved in blocks (the
order alternating), at 1 and 8 concurrent clients, so drift in the machine's load falls on
both alike. Target: TLS + auth adds at most 1 ms to the p50 at 1 client.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.run import MODELS, ROOT, TREE_MODEL, applicant_rows, percentiles

CONCURRENCY = (1, 8)
CALLS_PER_CLIENT = {1: 600, 8: 120}
BLOCKS = 12  # per mode; the order of the two modes alternates block by block
WARMUP = 30
TARGET_MS = 1.0
PRINCIPAL = "bench-decider"


@contextlib.asynccontextmanager
async def _servers(workdir: Path) -> AsyncIterator[dict[str, tuple[int, Any]]]:
    """Both servers; per mode its port and the channel credentials and metadata to call it."""
    import grpc

    from expound.server.app import running_server
    from expound.server.tokens import new_token, token_line
    from expound.settings import Settings
    from scripts.make_test_ca import make_ca, server_certificate, write_pair

    ca = make_ca()
    ca_file, _ = write_pair(ca, workdir, "ca")
    cert, key = write_pair(server_certificate(ca), workdir, "server")
    token = new_token()
    (workdir / "tokens").write_text(token_line(PRINCIPAL, token) + "\n")
    (workdir / "policy.toml").write_text(
        '[roles.decider]\nrpcs = ["Explain"]\n[principals]\n' + f'"{PRINCIPAL}" = ["decider"]\n'
    )

    def settings(name: str, **security: Any) -> Settings:
        return Settings(
            port=0,
            model_dir=MODELS,
            archive_path=workdir / f"{name}.sqlite3",
            signing_key_path=workdir / f"{name}-signing-key.pem",
            grace_seconds=0.5,
            llm_mode="off",
            metrics_port=0,  # two servers at once; telemetry is measured in its own section
            **security,
        )

    secured = settings(
        "tls",
        tls_cert_file=cert,
        tls_key_file=key,
        tokens_file=workdir / "tokens",
        policy_file=workdir / "policy.toml",
    )
    async with running_server(settings("plain")) as plain, running_server(secured) as tls:
        credentials = grpc.ssl_channel_credentials(ca_file.read_bytes())
        yield {
            "plaintext": (plain.port, None),
            "tls+token": (tls.port, (credentials, (("authorization", f"Bearer {token}"),))),
        }


async def _measure(
    servers: dict[str, tuple[int, Any]], concurrency: int, applicants: list[dict[str, Any]]
) -> dict[str, list[float]]:
    """Client-measured Explain latencies (us) per mode, interleaved in blocks."""
    import grpc

    from expound.clients.client import explain_request
    from expound.v1 import explain_pb2_grpc

    requests = [explain_request(TREE_MODEL, features) for features in applicants]
    samples: dict[str, list[float]] = {mode: [] for mode in servers}
    async with contextlib.AsyncExitStack() as stack:
        stubs: dict[str, tuple[Any, tuple[tuple[str, str], ...]]] = {}
        for mode, (port, security) in servers.items():
            if security is None:
                channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
                metadata: tuple[tuple[str, str], ...] = ()
            else:
                credentials, metadata = security
                channel = grpc.aio.secure_channel(f"localhost:{port}", credentials)
            await stack.enter_async_context(channel)
            stubs[mode] = (explain_pb2_grpc.ExplainServiceStub(channel), metadata)

        async def client(mode: str, offset: int, calls: int, record: bool) -> None:
            stub, metadata = stubs[mode]
            for i in range(calls):
                request = requests[(offset + i * concurrency) % len(requests)]
                start = time.perf_counter_ns()
                await stub.Explain(request, metadata=metadata, timeout=30)
                if record:
                    samples[mode].append((time.perf_counter_ns() - start) / 1000)

        for mode in stubs:  # connections (and the TLS handshake) made before measuring
            await asyncio.gather(*(client(mode, c, WARMUP, False) for c in range(concurrency)))
        per_block = CALLS_PER_CLIENT[concurrency] // BLOCKS
        modes = list(stubs)
        for block in range(BLOCKS):
            for mode in modes if block % 2 == 0 else reversed(modes):
                await asyncio.gather(
                    *(client(mode, c + block, per_block, True) for c in range(concurrency))
                )
    return samples


async def _all(applicants: list[dict[str, Any]], workdir: Path) -> list[dict[str, Any]]:
    runs = []
    async with _servers(workdir) as servers:
        for concurrency in CONCURRENCY:
            samples = await _measure(servers, concurrency, applicants)
            stats = {mode: percentiles(values) for mode, values in samples.items()}
            overhead_p50 = stats["tls+token"]["p50_us"] - stats["plaintext"]["p50_us"]
            runs.append(
                {
                    "concurrency": concurrency,
                    "explain": stats,
                    "overhead_p50_us": round(overhead_p50, 1),
                }
            )
    return runs


def run() -> dict[str, Any]:
    """Explain p50/p99 plaintext against TLS + token auth, at 1 and 8 clients."""
    applicants = applicant_rows()
    (ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "var", prefix="bench-auth-") as workdir:
        runs = asyncio.run(_all(applicants, Path(workdir)))
    table: list[dict[str, Any]] = []
    for entry in runs:
        c = entry["concurrency"]
        for mode, stats in entry["explain"].items():
            for q in ("p50", "p99"):
                table.append(
                    {
                        "metric": f"auth: Explain {mode} c={c} {q}",
                        "value": round(stats[f"{q}_us"] / 1000, 3),
                        "unit": "ms",
                    }
                )
        row: dict[str, Any] = {
            "metric": f"auth: TLS + token overhead c={c} p50",
            "value": round(entry["overhead_p50_us"] / 1000, 3),
            "unit": "ms",
        }
        if c == 1:
            row["target"] = f"<= {TARGET_MS:g} ms"
        table.append(row)
    at_one = next(entry for entry in runs if entry["concurrency"] == 1)
    return {
        "model": TREE_MODEL,
        "transport": "grpc.aio over loopback, client and servers in one process and event loop",
        "tls": "TLS 1.3 (grpc default), ECDSA P-256 server certificate from a test CA",
        "auth": "static bearer token (SHA-256, constant-time compare) + policy check per call",
        "llm": "off",
        "interleaving": f"{BLOCKS} blocks per mode, order alternating",
        "runs": runs,
        "target_overhead_p50_ms": TARGET_MS,
        "meets_target": at_one["overhead_p50_us"] <= TARGET_MS * 1000,
        "table": table,
    }
