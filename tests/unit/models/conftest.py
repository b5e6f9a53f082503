"""The demo data as a credit team's own encoding: a data frame of model columns and a label.

Categories are integer codes (their position in the demo schema), the label is 1 for a
defaulted loan; each test trains its library's model on this, writes the sample CSV and
imports the model with `expound models import` (the function behind it).
"""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.eval_imported import CODED as OUTSIDE_CODED
from expound.clients.cli import main
from expound.models.demo_schema import FEATURES
from expound.models.encoding import encode_rows
from expound.models.training import load_applicants

ROOT = Path(__file__).resolve().parents[3]
CATEGORICAL = [spec.name for spec in FEATURES if spec.type == "category"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """OpenMP libraries (HistGradientBoosting, LightGBM, XGBoost) on one thread: on a busy
    machine their spinning workers turn a 0.3 s fit into 30 s."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def credit_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """Encoded demo data (category codes from 0) and the 0/1 default label."""
    rows, labels = load_applicants(ROOT / "data" / "german_credit.csv")
    matrix = encode_rows(FEATURES, rows)
    frame = pd.DataFrame(matrix, columns=[spec.name for spec in FEATURES])
    for name in CATEGORICAL:
        frame[name] = frame[name].astype(np.int64)
    return frame, labels


def write_sample(frame: pd.DataFrame, labels: np.ndarray, path: Path) -> Path:
    """Writes the sample CSV `expound models import --data` reads, label in `target`."""
    frame.assign(target=labels).to_csv(path, index=False)
    return path


# The outside team's integer-coded categories (purpose and housing are one-hot).
CODED = list(OUTSIDE_CODED)


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The outside team's forest, pickled, and the sample of its inputs (label: good=1):
    the one ``make eval`` imports (bench/eval_imported.py)."""
    from bench.eval_imported import outside_data, outside_forest

    data, good = outside_data()
    forest = outside_forest(data, good)
    root = tmp_path_factory.mktemp("outside")
    (root / "forest.pkl").write_bytes(pickle.dumps(forest))
    sample = write_sample(data, good, root / "sample.csv")
    return {"root": root, "forest": forest, "data": data, "sample": sample}


def import_outside(outside: dict[str, Any], out: Path, *extra: str) -> int:
    return main(
        [
            "models",
            "import",
            str(outside["root"] / "forest.pkl"),
            "--data",
            str(outside["sample"]),
            "--target",
            "target",
            "--out",
            str(out),
            "--categorical",
            ",".join(CODED),
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def imported(outside: dict[str, Any]) -> Path:
    """The forest imported with --trust-pickle, its decision rule and meaning declared."""
    out = outside["root"] / "outside-forest"
    assert import_outside(outside, out, "--trust-pickle") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["score_meaning"] = "probability that the applicant repays (good credit)"
    manifest["decision"]["adverse_when"] = "score_below"
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def reviewed(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with every TODO replaced by wording, as its owner would write it."""
    manifest["title"] = "Outside team's credit model"
    if manifest["score_meaning"].startswith("TODO"):
        manifest["score_meaning"] = "probability of the adverse outcome"
    for feature in manifest["features"]:
        feature["description"] = feature["name"].replace("_", " ")
        # Descriptions the owner already wrote are kept; the rest are left to the ids.
        feature["category_descriptions"] = {
            category: text
            for category, text in feature["category_descriptions"].items()
            if not text.startswith("TODO")
        }
    for reason in manifest["reasons"]:
        reason["text"] = f"Your {reason['features'][0].replace('_', ' ')}"
        reason["neutral_text"] = f"The applicant's {reason['features'][0].replace('_', ' ')}"
    assert "TODO" not in json.dumps(manifest)
    return manifest


@pytest.fixture
def reviewed_dir(imported: Path, tmp_path: Path) -> Path:
    """A copy of the imported directory after its owner replaced every TODO."""
    directory = tmp_path / imported.name
    shutil.copytree(imported, directory)
    path = directory / "manifest.json"
    path.write_text(json.dumps(reviewed(json.loads(path.read_text()))))
    return directory
