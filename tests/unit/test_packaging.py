"""The package as it installs: its exports, its folder mapping, generated code, demo models."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import expound
from expound.models.registry import load_model
from expound.models.training import GBM_ID, LOGISTIC_ID, build_demo_models
from expound.web.docs import vendored
from tests.conftest import ROOT

PACKAGES: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
    "packages"
]
SUBPACKAGES = {
    f"expound.{folder.name}": folder
    for folder in sorted((ROOT / "expound").iterdir())
    if (folder / "__init__.py").is_file()
}
# The design card's top-level folders, each a link to its subpackage.
CARD_FOLDERS = ("server", "explainers", "rankers", "clients")


def python_outside_repo(code: str) -> str:
    """Runs ``code`` with this interpreter from /tmp (so the repo is not on sys.path)."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd="/tmp",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_all_is_exactly_what_the_package_exports() -> None:
    public = {
        name
        for name, value in vars(expound).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert set(expound.__all__) == public | {"__version__"}
    assert len(expound.__all__) == len(set(expound.__all__))
    names = ", ".join(expound.__all__)
    python_outside_repo(f"from expound import {names}")


def test_every_subpackage_is_listed_and_a_real_folder() -> None:
    assert sorted(SUBPACKAGES) == sorted(p for p in PACKAGES if p != "expound")
    for name, folder in SUBPACKAGES.items():
        assert not folder.is_symlink(), f"{name} must be a real folder, not a link"


@pytest.mark.parametrize("name", CARD_FOLDERS)
def test_the_design_cards_folders_are_links_to_their_subpackages(name: str) -> None:
    link = ROOT / name
    assert link.is_symlink() and os.readlink(link) == f"expound/{name}"
    assert link.resolve() == SUBPACKAGES[f"expound.{name}"].resolve()


def test_no_other_top_level_folder_holds_python_the_package_would_miss() -> None:
    # A module dropped next to the links would be importable from the repo but not installed.
    allowed = {"expound", "tests", "bench", "scripts", *CARD_FOLDERS}
    stray = sorted(
        path.parent.name
        for path in ROOT.glob("*/*.py")
        if path.parent.name not in allowed and not path.parent.name.startswith(".")
    )
    assert stray == []


def test_subpackages_resolve_to_their_folders_and_nothing_leaks() -> None:
    tops = sorted({*CARD_FOLDERS, *(name.split(".")[1] for name in SUBPACKAGES)} - {"v1"})
    code = f"""
import importlib, importlib.util, json, pathlib
located = {{
    name: str(pathlib.Path(importlib.import_module(name).__file__).parent)
    for name in {sorted(SUBPACKAGES)!r}
}}
leaked = sorted(top for top in {tops!r} if importlib.util.find_spec(top) is not None)
print(json.dumps({{"located": located, "leaked": leaked}}))
"""
    found = json.loads(python_outside_repo(code))
    assert found["located"] == {name: str(folder) for name, folder in SUBPACKAGES.items()}
    assert found["leaked"] == [], "top-level modules importable outside the repo"


@pytest.mark.slow
def test_the_wheel_holds_every_subpackage_under_expound(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("expound-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"expound", wheel.name.split("-py3")[0] + ".dist-info"}
    for name, package in SUBPACKAGES.items():
        folder = name.replace(".", "/")
        for source in package.glob("*.py"):
            assert f"{folder}/{source.name}" in names, f"{folder}/{source.name} missing"
    assert "expound/generators/phrasebanks/applicant.json" in names or any(
        n.startswith("expound/generators/phrasebanks/") for n in names
    )
    # The default access policy, read when EXPOUND_POLICY_FILE is unset.
    assert "expound/server/policy.toml" in names
    # The notice templates shipped as the default set, every language of it.
    for name in ("notice.toml", "layout.html", "en/notice.html", "es/reasons.toml"):
        assert f"expound/notices/templates/default/{name}" in names
    # The record browser's templates, script and style (issue 13).
    assert {
        "expound/web/templates/record.html",
        "expound/web/static/proof.js",
        "expound/web/static/style.css",
    } <= set(names)
    # The API docs' vendored Swagger UI and ReDoc, every file the manifest lists.
    vendor = "expound/web/static/vendor"
    assert f"{vendor}/VENDORED.json" in names
    for package in vendored().values():
        for file in package.files:
            assert f"{vendor}/{package.folder.name}/{file}" in names, f"{file} missing"


def test_generated_code_matches_the_protos(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), str(tmp_path)],
        cwd="/tmp",
        check=True,
        capture_output=True,
        timeout=120,
    )
    fresh = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in (ROOT / "expound" / "v1").glob("*_pb2*"))
    assert committed == fresh and fresh, "expound/v1/ has other files than gen_proto.py writes"
    for name in fresh:
        assert (ROOT / "expound" / "v1" / name).read_bytes() == (tmp_path / name).read_bytes(), (
            f"expound/v1/{name} drifted from proto/: run `make proto`"
        )


@pytest.mark.slow
def test_demo_models_train_reproducibly(models_dir: Path, tmp_path: Path) -> None:
    build_demo_models(ROOT / "data" / "german_credit.csv", tmp_path)
    gbm, again = models_dir / GBM_ID, tmp_path / GBM_ID
    assert sha256(gbm / "model.lgb.txt") == sha256(again / "model.lgb.txt")
    for model_id in (GBM_ID, LOGISTIC_ID):
        assert sha256(models_dir / model_id / "background.json") == sha256(
            tmp_path / model_id / "background.json"
        )
        first = json.loads((models_dir / model_id / "manifest.json").read_text())
        second = json.loads((tmp_path / model_id / "manifest.json").read_text())
        if model_id == LOGISTIC_ID:
            # skops zips carry timestamps, so only the predictions must match, below.
            del first["artifact_sha256"], second["artifact_sha256"]
        assert first == second
    logistic = load_model(models_dir / LOGISTIC_ID)
    logistic_again = load_model(tmp_path / LOGISTIC_ID)
    rows = logistic.background
    assert np.array_equal(rows, logistic_again.background)
    assert np.array_equal(logistic.scorer.raw(rows), logistic_again.scorer.raw(rows))
    assert np.ptp(logistic.scorer.raw(rows)) > 1.0, "a constant model proves nothing"
