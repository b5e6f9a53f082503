"""The light client: ``pip install expound`` without the server extra.

A subprocess whose import system refuses every heavy package imports the clients and makes
real calls, sync and asyncio, against a server this test serves; a slow test builds the
wheel, installs it (base only) into a fresh venv and checks what came with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path
from typing import Any

import pytest

from expound.server.app import RunningServer
from tests.conftest import GBM, ROOT

HEAVY = (
    "torch",
    "sklearn",
    "shap",
    "lightgbm",
    "xgboost",
    "catboost",
    "transformers",
    "fastapi",
    "psycopg",
    "pandas",
    "numpy",
    "pyarrow",
    "matplotlib",
    # Light, but the server's only: a client that imports them has a server import in it.
    "httpx",
    "jwt",
    "prometheus_client",
    "opentelemetry",
    "skops",
)

CLIENT_SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.abc, json, sys

    HEAVY = set(sys.argv[1].split(","))

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in HEAVY:
                raise ModuleNotFoundError(f"the light client imported {name}", name=name)
            return None

    sys.meta_path.insert(0, Refuse())

    from expound.clients.aio import AsyncExplainClient
    from expound.clients.cells import typed_features  # the batch's cell typing (Ray workers)
    from expound.clients.client import ExplainClient

    target, model, applicant = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    with ExplainClient(target) as client:
        response = client.explain(model, applicant, decision_id="light-1")

    async def read_back():
        async with AsyncExplainClient(target) as client:
            return await client.get_record(response.record_id)

    record = asyncio.run(read_back())

    # The command line too: the record's proof bundle, printed.
    import contextlib, io
    from expound.clients.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exit_code = main(["--target", target, "records", "get", record.record_id, "--proof"])
    # Commands that need an extra say which, and fail cleanly.
    needs = {}
    for command in (["explain-batch", "in.csv", "--model", model, "--out", "out"],
                    ["plots", "waterfall", record.record_id], ["serve"]):
        with contextlib.redirect_stderr(io.StringIO()) as said:
            code = main(["--target", target, *command])
        needs[command[0]] = [code, said.getvalue().strip()]

    loaded = sorted({m.split(".")[0] for m in sys.modules} & HEAVY)
    print(json.dumps({"record_id": record.record_id, "decision_id": record.decision_id,
                      "decision": response.prediction.decision, "heavy_loaded": loaded,
                      "cli_exit": exit_code, "bundle": json.loads(printed.getvalue()),
                      "needs": needs}))
    """
)


def without_pythonpath() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}


async def test_the_client_imports_and_calls_with_every_heavy_package_refused(
    service: RunningServer, denied_applicant: dict[str, Any]
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT_SCRIPT,
        ",".join(HEAVY),
        f"127.0.0.1:{service.port}",
        GBM,
        json.dumps(denied_applicant),
        cwd=ROOT,
        env={**without_pythonpath(), "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    seen = json.loads(out)
    assert seen["cli_exit"] == 0
    assert seen["bundle"]["record_id"] == seen["record_id"]
    assert seen["bundle"]["format"] == "expound.inclusion-bundle/v1"
    serve_code, serve_said = seen["needs"].pop("serve")
    assert serve_code == 2
    assert serve_said.endswith("needs the server extra (pip install 'expound[server]')")
    assert seen["needs"] == {
        "explain-batch": [
            2,
            "error: pandas is not installed: this command needs the notebook extra "
            "(pip install 'expound[notebook]')",
        ],
        "plots": [
            2,
            "error: pandas is not installed: this command needs the notebook extra "
            "(pip install 'expound[notebook]')",
        ],
    }
    assert seen["decision_id"] == "light-1" and seen["record_id"]
    assert seen["decision"] in {"approve", "decline"}
    assert seen["heavy_loaded"] == []


def test_the_refusing_import_hook_does_refuse() -> None:
    # The hook above must be able to fail: the service imports numpy at once.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CLIENT_SCRIPT.replace("expound.clients.aio", "expound.server.app"),
            ",".join(HEAVY),
        ],
        cwd=ROOT,
        env={**without_pythonpath(), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "the light client imported" in done.stderr


@pytest.mark.slow
def test_the_wheel_installs_without_the_service_and_its_client_imports(tmp_path: Path) -> None:
    # Built from a copy: setuptools leaves build/ in the tree it builds, and a stale one
    # would carry deleted modules into later wheels.
    source = tmp_path / "source"
    ignored = shutil.ignore_patterns(".*", "artifacts", "build", "*.egg-info", "__pycache__")
    shutil.copytree(ROOT, source, symlinks=True, ignore=ignored)
    wheels = tmp_path / "wheels"
    build = ["wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(wheels)]
    subprocess.run(
        [sys.executable, "-m", "pip", *build, str(source)],
        check=True,
        timeout=300,
        env=without_pythonpath(),
    )
    (wheel,) = wheels.glob("expound-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel],
        check=True,
        timeout=300,
        env=without_pythonpath(),
    )
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    heavy = {"torch", "scikit-learn", "shap", "lightgbm", "xgboost", "xgboost-cpu", "catboost"}
    heavy |= {"transformers", "fastapi", "psycopg", "pandas", "numpy", "pyarrow", "matplotlib"}
    assert installed & heavy == set()
    assert {"grpcio", "protobuf", "expound"} <= installed
    imported = subprocess.run(
        [
            python,
            "-c",
            "from expound.clients.client import ExplainClient;"
            "from expound.clients.aio import AsyncExplainClient;"
            "import expound.clients.cli;"
            "print(ExplainClient.__name__, AsyncExplainClient.__name__)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=without_pythonpath(),
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["ExplainClient", "AsyncExplainClient"]
    helped = subprocess.run(
        [env_dir / "bin" / "expound", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=without_pythonpath(),
        check=False,
    )
    assert helped.returncode == 0, helped.stderr
    assert "explain" in helped.stdout and "plots" in helped.stdout
