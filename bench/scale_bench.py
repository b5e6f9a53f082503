"""Scale-out benchmarks (issue 14): group commit, the CPU pool, replicas on one PostgreSQL log.

Every server here is a real ``expound serve`` subprocess (LLM off, metrics off), driven by
grpc.aio clients in this process, so the figures are what a caller sees of the service and
not of a loop it shares with its clients. Each figure is taken with group commit on
(``EXPOUND_ARCHIVE_GROUP_MAX=64``, the default) and off (``1``: each append its own
transaction, the path before issue 14), the two servers running side by side and measured
in alternation, in the same run.

- ``overhead``: Explain over loopback at 1, 8 and 32 concurrent clients, one process,
  SQLite (WAL, synchronous=FULL) under var/. "non-SHAP" is the client-measured total less
  the ``attribute`` stage the response reports: gRPC, validation, reasons, plan, archive
  commit. Target: non-SHAP p50 <= 5 ms at 8 clients.
- ``throughput``: LLM-off calls per second at 32 clients: one process on SQLite, and two
  replicas on one PostgreSQL log (16 clients each). Target: >= 1,000 calls/s for one
  process on 2 cores.
- ``cpu_pool``: a Health check's latency (answered on the event loop) during a burst of
  32 Explain clients, the CPU pool sized to 2 workers against 32.
- ``append_postgres``: archive appends per second through the store (4 KB records, signed
  checkpoints, synchronous_commit=on) by 1, 8 and 32 writers split across two replica
  processes on one PostgreSQL log.
- ``grpc_floor``: how far the service is from gRPC alone, side by side in one run: the
  real server (SQLite, group commit) against a grpc.aio server in its own process whose
  Explain returns, without doing anything, a response the real server gave (same bytes on
  the wire), each at 1, 8 and 32 clients, with each server's CPU per call from ``/proc``.
  The floor is not the service: it is the most any Python gRPC server can answer here.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.run import MODELS, ROOT
from bench.servers import start_serve

TREE_MODEL = "german-credit-gbm"
SOCKET_DIR = os.environ.get("EXPOUND_PG_SOCKET_DIR", "/var/run/postgresql")
CLIENTS = (1, 8, 32)
CALLS = {1: 300, 8: 60, 32: 20}  # per client per round
ROUNDS = 2
WARMUP = 20
WRITERS = (1, 8, 32)
APPENDS = {1: 300, 8: 60, 32: 20}  # per writer
GROUPING = {"grouped": "64", "one_per_txn": "1"}
NON_SHAP_TARGET_MS = 5.0
THROUGHPUT_TARGET = 1000.0


def _ms(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 3)


def _start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Starts ``expound serve`` with ``env`` (LLM off, hashing embedder unless it says
    otherwise); returns it and its port once it serves."""
    return start_serve(
        {"EXPOUND_LLM_MODE": "off", "EXPOUND_RANKER_EMBEDDER": "hashing", **env}, log, 60.0
    )


@asynccontextmanager
async def _server(env: dict[str, str], log: Path) -> AsyncIterator[int]:
    """An ``expound serve`` subprocess; yields its port once it serves."""
    server, port = await asyncio.to_thread(_start, env, log)
    try:
        yield port
    finally:
        server.terminate()
        await asyncio.to_thread(server.wait, 30)


def _requests() -> list[Any]:
    from bench.run import applicant_rows
    from expound.clients.client import explain_request

    return [explain_request(TREE_MODEL, row) for row in applicant_rows()[:200]]


async def _drive(ports: Sequence[int], clients: int, calls: int) -> dict[str, Any]:
    """``clients`` concurrent callers spread over ``ports``, ``calls`` each."""
    import grpc

    from expound.v1 import explain_pb2_grpc

    requests = _requests()
    totals: list[float] = []
    non_shap: list[float] = []
    archive: list[float] = []
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for port in ports]
    stubs = [explain_pb2_grpc.ExplainServiceStub(channel) for channel in channels]

    async def client(index: int, count: int, record: bool) -> None:
        stub = stubs[index % len(stubs)]
        for i in range(count):
            request = requests[(index + i * clients) % len(requests)]
            started = time.perf_counter()
            response = await stub.Explain(request, timeout=60)
            total = time.perf_counter() - started
            if record:
                stages = {t.stage: t.millis / 1000 for t in response.timings}
                totals.append(total)
                non_shap.append(total - stages["attribute"])
                archive.append(stages.get("archive", 0.0))

    try:
        await asyncio.gather(*(client(c, max(1, WARMUP // clients), False) for c in range(clients)))
        started = time.perf_counter()
        await asyncio.gather(*(client(c, calls, True) for c in range(clients)))
        elapsed = time.perf_counter() - started
    finally:
        for channel in channels:
            await channel.close()
    return {"totals": totals, "non_shap": non_shap, "archive": archive, "elapsed": elapsed}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    totals = [x for run in runs for x in run["totals"]]
    non_shap = [x for run in runs for x in run["non_shap"]]
    archive = [x for run in runs for x in run["archive"]]
    elapsed = sum(run["elapsed"] for run in runs)
    return {
        "calls": len(totals),
        "calls_per_s": round(len(totals) / elapsed, 1),
        "total_p50_ms": _ms(totals, 0.5),
        "total_p99_ms": _ms(totals, 0.99),
        "non_shap_p50_ms": _ms(non_shap, 0.5),
        "non_shap_p99_ms": _ms(non_shap, 0.99),
        "archive_p50_ms": _ms(archive, 0.5),
    }


async def _overhead(workdir: Path) -> dict[str, Any]:
    """One process on SQLite, group commit on and off side by side, rounds alternating."""
    results: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in GROUPING}
    async with (
        _server(_sqlite_env(workdir, "grouped"), workdir / "grouped.log") as grouped,
        _server(_sqlite_env(workdir, "one_per_txn"), workdir / "one.log") as alone,
    ):
        ports = {"grouped": grouped, "one_per_txn": alone}
        for clients in CLIENTS:
            for _ in range(ROUNDS):
                for name, port in ports.items():
                    run = await _drive([port], clients, CALLS[clients])
                    results[name].setdefault(str(clients), []).append(run)
    return {
        name: {clients: _summary(runs) for clients, runs in by_clients.items()}
        for name, by_clients in results.items()
    }


def _sqlite_env(workdir: Path, grouping: str) -> dict[str, str]:
    return {
        "EXPOUND_MODEL_DIR": str(MODELS),
        "EXPOUND_ARCHIVE_PATH": str(workdir / f"{grouping}.sqlite3"),
        "EXPOUND_SIGNING_KEY_PATH": str(workdir / f"{grouping}-key.pem"),
        "EXPOUND_ARCHIVE_GROUP_MAX": GROUPING[grouping],
    }


@asynccontextmanager
async def _database() -> AsyncIterator[str]:
    """A throwaway database with the archive schema; yields its DSN (the owner's)."""
    import psycopg

    from expound.archive.postgres import install_schema

    name = f"expound_bench_{uuid.uuid4().hex[:8]}"
    admin = await psycopg.AsyncConnection.connect(host=SOCKET_DIR, dbname="postgres")
    await admin.set_autocommit(True)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = f"host={SOCKET_DIR} dbname={name}"
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as owner:
            await install_schema(owner)
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _postgres_env(workdir: Path, dsn: str, grouping: str) -> dict[str, str]:
    from expound.archive.checkpoint import generate_private_key_file

    key = workdir / f"pg-{grouping}-key.pem"
    if not key.exists():
        generate_private_key_file(key)
    return {
        "EXPOUND_MODEL_DIR": str(MODELS),
        "EXPOUND_ARCHIVE_BACKEND": "postgres",
        "EXPOUND_ARCHIVE_DSN": dsn,
        "EXPOUND_SIGNING_KEY_PATH": str(key),
        "EXPOUND_SIGNING_KEY_CREATE": "false",
        "EXPOUND_ARCHIVE_GROUP_MAX": GROUPING[grouping],
    }


async def _throughput(workdir: Path) -> dict[str, Any]:
    """Calls/s at 32 clients: one process on SQLite; two replicas on one PostgreSQL log."""
    clients = 32
    figures: dict[str, Any] = {}
    for grouping in GROUPING:
        env = _sqlite_env(workdir, grouping)
        env["EXPOUND_ARCHIVE_PATH"] = str(workdir / f"throughput-{grouping}.sqlite3")
        async with _server(env, workdir / f"t-{grouping}.log") as port:
            run = await _drive([port], clients, CALLS[clients] * 2)
        figures[f"one_process_sqlite_{grouping}"] = _summary([run])
    if not _postgres_reachable():
        figures["two_replicas_postgres"] = {"skipped": f"no PostgreSQL on {SOCKET_DIR}"}
        return figures
    for grouping in GROUPING:
        async with _database() as dsn:
            env = _postgres_env(workdir, dsn, grouping)
            async with (
                _server(env, workdir / f"r1-{grouping}.log") as first,
                _server(env, workdir / f"r2-{grouping}.log") as second,
            ):
                run = await _drive([first, second], clients, CALLS[clients] * 2)
        figures[f"two_replicas_postgres_{grouping}"] = _summary([run])
    return figures


POOLS = {"pool_2": "2", "pool_32": "32"}
"""The CPU pool sized to the 2 cores against one as large as the burst (unbounded)."""


async def _health_during_burst(port: int, clients: int) -> dict[str, Any]:
    """Health-check latency (served on the event loop) while ``clients`` callers explain."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    burst = asyncio.create_task(_drive([port], clients, CALLS[clients]))
    probes: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        await asyncio.sleep(0.2)  # past the warm-up
        while not burst.done():
            started = time.perf_counter()
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=30)
            probes.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)
    run = await burst
    return {
        "health_p50_ms": _ms(probes, 0.5),
        "health_p99_ms": _ms(probes, 0.99),
        "probes": len(probes),
        **{k: v for k, v in _summary([run]).items() if k != "calls"},
    }


async def _cpu_pool(workdir: Path) -> dict[str, Any]:
    """The event loop under a 32-client burst with the pool sized to the cores or not."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in POOLS}
    envs = {}
    for name, workers in POOLS.items():
        env = _sqlite_env(workdir, "grouped")
        env["EXPOUND_ARCHIVE_PATH"] = str(workdir / f"{name}.sqlite3")
        env["EXPOUND_CPU_WORKERS"] = workers
        envs[name] = env
    async with (
        _server(envs["pool_2"], workdir / "pool_2.log") as small,
        _server(envs["pool_32"], workdir / "pool_32.log") as large,
    ):
        for _ in range(ROUNDS):
            for name, port in (("pool_2", small), ("pool_32", large)):
                results[name].append(await _health_during_burst(port, 32))
    return {
        name: {
            key: round(statistics.median(run[key] for run in runs), 3)
            for key in runs[0]
            if key != "probes"
        }
        for name, runs in results.items()
    }


async def _append_worker(dsn: str, writers: int, count: int, max_group: int) -> None:
    """One replica's writers: waits for "go" on stdin, prints its latencies as JSON."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bench.archive_bench import _record, _signer
    from expound.archive.postgres import open_postgres
    from expound.archive.retention import RetentionPolicy

    key = Ed25519PrivateKey.generate()
    store = await open_postgres(dsn, _signer(key), RetentionPolicy(), max_group=max_group)
    latencies: list[float] = []

    async def writer(offset: int) -> None:
        for n in range(count):
            record = _record(offset + n)
            started = time.perf_counter()
            await store.append(record)
            latencies.append(time.perf_counter() - started)

    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        started = time.perf_counter()
        await asyncio.gather(*(writer(w * 1_000_000 + os.getpid()) for w in range(writers)))
        elapsed = time.perf_counter() - started
        transactions = store.transactions
    finally:
        await store.aclose()
    print(json.dumps({"latencies": latencies, "elapsed": elapsed, "groups": transactions}))


async def _appends_across_replicas(dsn: str, writers: int, max_group: int) -> dict[str, Any]:
    per_replica = [writers - writers // 2, writers // 2]
    workers = []
    for count in per_replica:
        if count == 0:
            continue
        workers.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.scale_bench",
                "append-worker",
                dsn,
                str(count),
                str(APPENDS[writers]),
                str(max_group),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=ROOT,
            )
        )
    for worker in workers:
        assert worker.stdout is not None
        assert (await worker.stdout.readline()).strip() == b"ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()
    outputs = [json.loads((await worker.communicate())[0]) for worker in workers]
    latencies = [x for out in outputs for x in out["latencies"]]
    elapsed = max(out["elapsed"] for out in outputs)
    appends = len(latencies)
    groups = sum(out["groups"] for out in outputs)
    return {
        "writers": writers,
        "replicas": len(workers),
        "appends": appends,
        "appends_per_s": round(appends / elapsed, 1),
        "p50_ms": _ms(latencies, 0.5),
        "p99_ms": _ms(latencies, 0.99),
        "records_per_transaction": round(appends / groups, 2) if groups else 1.0,
    }


def _postgres_reachable() -> bool:
    import psycopg

    try:
        psycopg.connect(host=SOCKET_DIR, dbname="postgres", connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


async def _append_postgres() -> dict[str, Any]:
    if not _postgres_reachable():
        return {"skipped": f"no PostgreSQL on {SOCKET_DIR}; run scripts/ensure_postgres.sh"}
    figures: dict[str, Any] = {}
    for writers in WRITERS:
        for grouping, max_group in GROUPING.items():
            async with _database() as dsn:
                run = await _appends_across_replicas(dsn, writers, int(max_group))
            figures[f"writers_{writers}_{grouping}"] = run
    return figures


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def side_by_side(
    servers: dict[str, tuple[int, int]], clients: Sequence[int], rounds: int
) -> dict[str, dict[str, dict[str, Any]]]:
    """Drives servers (name -> (pid, port)) in alternation, ``rounds`` rounds per client
    count, so that the machine's other load falls on all alike. Per server and client count:
    the :func:`_summary` figures and ``server_cpu_ms_per_call``, the server's own CPU (all its
    threads, from ``/proc``) over the calls of its rounds, warm-up calls included."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in servers}
    for count in clients:
        for _ in range(rounds):
            for name, (pid, port) in servers.items():
                before = _cpu_s(pid)
                run = await _drive([port], count, CALLS[count])
                run["cpu_s"] = _cpu_s(pid) - before
                # The warm-up calls ran inside the same CPU reading.
                run["calls"] = len(run["totals"]) + count * max(1, WARMUP // count)
                runs[name].setdefault(str(count), []).append(run)
    figures: dict[str, dict[str, dict[str, Any]]] = {}
    for name, by_clients in runs.items():
        figures[name] = {}
        for label, measured in by_clients.items():
            summary = _summary(measured)
            cpu = sum(run["cpu_s"] for run in measured)
            calls = sum(run["calls"] for run in measured)
            summary["server_cpu_ms_per_call"] = round(1000 * cpu / calls, 3)
            figures[name][label] = summary
    return figures


async def _floor_server(recorded: bytes) -> None:
    """The floor: Explain answers a recorded response at once. Prints its port."""
    import grpc

    from expound.v1 import explain_pb2, explain_pb2_grpc

    answer = explain_pb2.ExplainResponse.FromString(recorded)

    class Floor(explain_pb2_grpc.ExplainServiceServicer):
        async def Explain(self, request: Any, context: Any) -> Any:
            return answer

    server = grpc.aio.server()
    explain_pb2_grpc.add_ExplainServiceServicer_to_server(Floor(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


async def _recorded_response(port: int) -> bytes:
    import grpc

    from expound.v1 import explain_pb2_grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        response = await stub.Explain(_requests()[0], timeout=30)
    return bytes(response.SerializeToString())


async def _grpc_floor(workdir: Path) -> dict[str, Any]:
    """The real server and the floor, driven in alternation at 1, 8 and 32 clients."""
    recorded = workdir / "response.bin"
    server, port = await asyncio.to_thread(
        _start,
        _sqlite_env(workdir, "grouped")
        | {"EXPOUND_ARCHIVE_PATH": str(workdir / "floor-service.sqlite3")},
        workdir / "floor-service.log",
    )
    try:
        await asyncio.to_thread(recorded.write_bytes, await _recorded_response(port))
        floor = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.scale_bench",
            "grpc-floor",
            str(recorded),
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
    except BaseException:
        server.terminate()
        raise
    try:
        assert floor.stdout is not None
        floor_port = int((await floor.stdout.readline()).strip())
        servers = {"service": (server.pid, port), "grpc_floor": (floor.pid, floor_port)}
        measured = await side_by_side(servers, CLIENTS, ROUNDS)
    finally:
        floor.terminate()
        await floor.wait()
        server.terminate()
        await asyncio.to_thread(server.wait, 30)
    # The floor's response carries the service's stage timings: only end-to-end figures and
    # CPU mean anything for it.
    kept = ("calls_per_s", "total_p50_ms", "total_p99_ms", "server_cpu_ms_per_call")
    return {
        name: {count: {key: summary[key] for key in kept} for count, summary in by.items()}
        for name, by in measured.items()
    }


def _table(results: dict[str, Any]) -> list[dict[str, Any]]:
    table: list[dict[str, Any]] = []
    for grouping, by_clients in results.get("overhead", {}).items():
        for clients, figures in by_clients.items():
            for q in ("p50", "p99"):
                row: dict[str, Any] = {
                    "metric": f"scale: Explain non-SHAP c={clients} {q} ({grouping})",
                    "value": figures[f"non_shap_{q}_ms"],
                    "unit": "ms",
                }
                if q == "p50" and clients == "8":
                    row["target"] = f"<= {NON_SHAP_TARGET_MS:g} ms"
                table.append(row)
            table.append(
                {
                    "metric": f"scale: archive stage c={clients} p50 ({grouping})",
                    "value": figures["archive_p50_ms"],
                    "unit": "ms",
                }
            )
    for name, figures in results.get("throughput", {}).items():
        if "skipped" in figures:
            continue
        row = {"metric": f"scale: throughput {name}", "value": figures["calls_per_s"]}
        row["unit"] = "calls/s"
        if name.startswith("one_process") and name.endswith("grouped"):
            row["target"] = f">= {THROUGHPUT_TARGET:g} calls/s"
        table.append(row)
    for name, figures in results.get("cpu_pool", {}).items():
        for key in ("health_p50_ms", "health_p99_ms", "non_shap_p50_ms"):
            table.append(
                {"metric": f"scale: 32-client burst {key} ({name})", "value": figures[key]}
            )
            table[-1]["unit"] = "ms"
    for name, figures in results.get("append_postgres", {}).items():
        if name == "skipped":
            continue
        table.append(
            {
                "metric": f"scale: postgres appends {name} (2 replicas)",
                "value": figures["appends_per_s"],
                "unit": "appends/s",
            }
        )
    for name, by_clients in results.get("grpc_floor", {}).items():
        for clients, figures in by_clients.items():
            table.append(
                {
                    "metric": f"scale: {name} c={clients} calls/s",
                    "value": figures["calls_per_s"],
                    "unit": "calls/s",
                }
            )
            table.append(
                {
                    "metric": f"scale: {name} c={clients} server CPU per call",
                    "value": figures["server_cpu_ms_per_call"],
                    "unit": "ms",
                }
            )
    return table


def run(
    parts: Sequence[str] = ("overhead", "throughput", "cpu_pool", "append_postgres", "grpc_floor"),
) -> dict[str, Any]:
    """Runs the scale-out benchmarks and returns the figures."""

    async def measure() -> dict[str, Any]:
        (ROOT / "var").mkdir(exist_ok=True)
        results: dict[str, Any] = {"cores": len(os.sched_getaffinity(0))}
        with tempfile.TemporaryDirectory(dir=ROOT / "var", prefix="bench-scale-") as folder:
            workdir = Path(folder)
            if "overhead" in parts:
                results["overhead"] = await _overhead(workdir)
            if "throughput" in parts:
                results["throughput"] = await _throughput(workdir)
            if "cpu_pool" in parts:
                results["cpu_pool"] = await _cpu_pool(workdir)
            if "append_postgres" in parts:
                results["append_postgres"] = await _append_postgres()
            if "grpc_floor" in parts:
                results["grpc_floor"] = await _grpc_floor(workdir)
        return results

    results = asyncio.run(measure())
    results["targets"] = {
        "non_shap_p50_ms_at_8": NON_SHAP_TARGET_MS,
        "one_process_calls_per_s": THROUGHPUT_TARGET,
    }
    results["table"] = _table(results)
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["append-worker"]:
        dsn, writers, count, max_group = sys.argv[2:6]
        asyncio.run(_append_worker(dsn, int(writers), int(count), int(max_group)))
    elif sys.argv[1:2] == ["grpc-floor"]:
        asyncio.run(_floor_server(Path(sys.argv[2]).read_bytes()))
    else:
        print(
            json.dumps(
                run(sys.argv[1:] or ("overhead", "throughput", "append_postgres", "grpc_floor")),
                indent=2,
            )
        )
