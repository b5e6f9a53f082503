"""Trains the two demo credit models reproducibly and writes their model directories.

Usage: ``python -m expound.models.training --data data/german_credit.csv --out DIR``
(``make models``). Same data, same seed, same library versions -> same artifacts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from expound.domain import FeatureScalar
from expound.models.demo_schema import FEATURES, REASONS, SOURCE_COLUMNS
from expound.models.encoding import category_columns, encode_rows
from expound.models.manifest import DecisionRule, ModelManifest

SEED = 20240611
BACKGROUND_ROWS = 100
THRESHOLD = 0.5
GBM_ID = "german-credit-gbm"
LOGISTIC_ID = "german-credit-logistic"


def load_applicants(csv_path: Path) -> tuple[list[dict[str, FeatureScalar]], np.ndarray]:
    """Reads the source CSV into typed feature rows and the 0/1 default label."""
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    rows: list[dict[str, FeatureScalar]] = []
    for record in frame.to_dict(orient="records"):
        row: dict[str, FeatureScalar] = {}
        for spec in FEATURES:
            column, mapping = SOURCE_COLUMNS[spec.name]
            text = record[column]
            if spec.type == "category":
                row[spec.name] = {v: k for k, v in mapping.items()}[text]
            elif spec.type == "bool":
                row[spec.name] = text.startswith("yes")
            else:
                row[spec.name] = float(text)
        rows.append(row)
    labels = (frame["creditability"] == "bad").to_numpy(dtype=np.int64)
    return rows, labels


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_background(out: Path, rows: list[dict[str, FeatureScalar]]) -> str:
    rng = random.Random(SEED)
    sample = rng.sample(rows, BACKGROUND_ROWS)
    path = out / "background.json"
    path.write_text(json.dumps(sample, sort_keys=True, indent=0) + "\n")
    return sha256_file(path)


def _train_gbm(x: np.ndarray, y: np.ndarray, path: Path) -> None:
    import lightgbm

    params = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 8,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "cat_smooth": 10,
        "seed": SEED,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "verbose": -1,
    }
    names = [spec.name for spec in FEATURES]
    data = lightgbm.Dataset(
        x, label=y, feature_name=names, categorical_feature=category_columns(FEATURES)
    )
    booster = lightgbm.train(params, data, num_boost_round=200)
    booster.save_model(str(path))


def _train_logistic(x: np.ndarray, y: np.ndarray, path: Path) -> None:
    import skops.io
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = category_columns(FEATURES)
    numeric = [j for j in range(len(FEATURES)) if j not in categorical]
    categories = [[float(i) for i in range(len(FEATURES[j].categories or []))] for j in categorical]
    pipeline = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [
                        (
                            "onehot",
                            OneHotEncoder(categories=categories, sparse_output=False),
                            categorical,
                        ),
                        ("scale", StandardScaler(), numeric),
                    ]
                ),
            ),
            ("classify", LogisticRegression(C=0.3, max_iter=2000)),
        ]
    )
    pipeline.fit(x, y)
    skops.io.dump(pipeline, path)


def _write_manifest(
    out: Path,
    *,
    model_id: str,
    kind: str,
    artifact: str,
    explainer: str,
    title: str,
    background_sha256: str,
    training: Mapping[str, str | int | float],
) -> None:
    manifest = ModelManifest(
        model_id=model_id,
        version="1.0.0",
        title=title,
        kind=kind,  # type: ignore[arg-type]
        artifact=artifact,
        artifact_sha256=sha256_file(out / artifact),
        explainer=explainer,  # type: ignore[arg-type]
        score_meaning="probability that the applicant defaults on the loan",
        units="log-odds of default",
        decision=DecisionRule(threshold=THRESHOLD),
        features=FEATURES,
        reasons=REASONS,
        background="background.json",
        background_sha256=background_sha256,
        training=dict(training),
    )
    text = json.dumps(manifest.model_dump(mode="json", exclude_defaults=False), indent=2)
    (out / "manifest.json").write_text(text + "\n")


def build_demo_models(csv_path: Path, out_dir: Path) -> list[Path]:
    """Trains both demo models and writes their directories; returns them."""
    rows, labels = load_applicants(csv_path)
    x = encode_rows(FEATURES, rows)
    training: dict[str, str | int | float] = {
        "data": "Statlog German credit (CC BY 4.0), data/german_credit.csv",
        "data_sha256": sha256_file(csv_path),
        "rows": len(rows),
        "default_rate": round(float(labels.mean()), 4),
        "seed": SEED,
    }
    written = []
    for model_id, kind, artifact, explainer, title, train in [
        (
            GBM_ID,
            "lightgbm",
            "model.lgb.txt",
            "tree",
            "German credit, gradient-boosted trees",
            _train_gbm,
        ),
        (
            LOGISTIC_ID,
            "sklearn",
            "model.skops",
            "linear",
            "German credit, logistic regression",
            _train_logistic,
        ),
    ]:
        out = out_dir / model_id
        out.mkdir(parents=True, exist_ok=True)
        train(x, labels, out / artifact)
        background_sha256 = _write_background(out, rows)
        _write_manifest(
            out,
            model_id=model_id,
            kind=kind,
            artifact=artifact,
            explainer=explainer,
            title=title,
            background_sha256=background_sha256,
            training=training,
        )
        written.append(out)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/german_credit.csv"))
    parser.add_argument("--out", type=Path, default=Path("artifacts/models"))
    args = parser.parse_args()
    for path in build_demo_models(args.data, args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
