"""The imported model of ``make eval``: the outside team's credit forest, trained here.

A 100-tree RandomForest on the demo data in the outside team's encoding (29 columns:
integer category codes from 1, ``purpose`` and ``housing`` one-hot, the label 1 for a
loan repaid, so a LOW score is adverse), trained with a fixed seed into a temporary
directory, imported with the function behind ``expound models import`` (no binary is
committed), and its TODO wording filled from the owner's reviewed completion file
``bench/imported/outside-forest.review.json``: titles, descriptions, reason texts, which
features are protected or actionable, their recourse bounds and the labels of banded codes.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.kinds_bench import ONEHOT, credit_frame
from bench.run import ROOT
from expound.models.demo_schema import FEATURES
from expound.models.importing import import_model
from expound.models.todos import todo_fields

MODEL_ID = "outside-forest"
REVIEW = ROOT / "bench" / "imported" / f"{MODEL_ID}.review.json"
TREES = 100
DEPTH = 8
FOREST_SEED = 7
# Integer-coded categories (the one-hot groups are found by the import itself).
CODED = tuple(s.name for s in FEATURES if s.type == "category" and s.name not in ONEHOT)
# The review's fields copied onto the imported manifest (the rest stays as inferred).
FEATURE_FIELDS = (
    "description",
    "unit",
    "category_descriptions",
    "protected",
    "actionable",
    "aliases",
    "recourse",
    "value_labels",
)


class ReviewIncomplete(ValueError):
    """The reviewed manifest still holds TODO wording or names a feature it lacks."""


def apply_review(manifest: dict[str, Any], review: dict[str, Any]) -> dict[str, Any]:
    """The imported manifest with the owner's wording of ``review`` in place of every TODO.

    Raises:
        ReviewIncomplete: the review names a feature the manifest lacks, or a TODO is left.
    """
    reviewed: dict[str, Any] = json.loads(json.dumps(manifest))
    for key in ("title", "score_meaning", "decision", "reasons"):
        reviewed[key] = review[key]
    by_name = {f["name"]: f for f in reviewed["features"]}
    unknown = sorted(set(review["features"]) - set(by_name))
    if unknown:
        raise ReviewIncomplete(f"the review names features the model lacks: {unknown}")
    for name, wording in review["features"].items():
        by_name[name].update({k: v for k, v in wording.items() if k in FEATURE_FIELDS})
    left = todo_fields(reviewed)
    if left:
        raise ReviewIncomplete(f"TODO left after the review: {left}")
    return reviewed


def outside_encoding(row: dict[str, Any]) -> dict[str, Any]:
    """A demo applicant as the imported manifest names its values: coded categories as the
    import names code c (``f_c``; the outside codes start at 1), the rest unchanged."""
    out = dict(row)
    for spec in FEATURES:
        if spec.name in CODED:
            out[spec.name] = f"f_{(spec.categories or []).index(row[spec.name]) + 1}"
        elif spec.type == "bool":
            out[spec.name] = bool(row[spec.name])
    return out


def outside_data() -> tuple[pd.DataFrame, np.ndarray]:
    """The demo data in the outside team's encoding (29 columns, category codes from 1,
    ``purpose`` and ``housing`` one-hot) and their label: 1 for a loan repaid."""
    _, wide, labels = credit_frame()
    wide[list(CODED)] = wide[list(CODED)] + 1  # the outside codes start at 1
    return wide, 1 - np.asarray(labels)


def outside_forest(data: pd.DataFrame, good: np.ndarray) -> Any:
    """The outside team's forest, fitted with its fixed seed on one thread."""
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(
        n_estimators=TREES, max_depth=DEPTH, random_state=FOREST_SEED, n_jobs=1
    )
    return forest.fit(data, good)


def build_outside_forest(workdir: Path) -> Path:
    """Trains, imports and reviews the forest under ``workdir``; the model directory."""
    wide, good = outside_data()
    forest = outside_forest(wide, good)
    artifact = workdir / "forest.pkl"
    artifact.write_bytes(pickle.dumps(forest))
    sample = workdir / "sample.csv"
    wide.assign(target=good).to_csv(sample, index=False)
    out = workdir / "models" / MODEL_ID
    import_model(
        artifact,
        sample,
        out,
        target="target",
        trust_pickle=True,
        categorical=list(CODED),
        model_id=MODEL_ID,
    )
    path = out / "manifest.json"
    review = json.loads(REVIEW.read_text())
    path.write_text(json.dumps(apply_review(json.loads(path.read_text()), review), indent=2))
    return out
