"""The demo data as a credit team's own encoding: a data frame of model columns and a label.

Categories are integer codes (their position in the demo schema), the label is 1 for a
defaulted loan; each test trains its library's model on this, writes the sample CSV and
imports the model with `expound models import` (the function behind it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from expound.models.demo_schema import FEATURES
from expound.models.encoding import encode_rows
from expound.models.training import load_applicants

ROOT = Path(__file__).resolve().parents[3]
CATEGORICAL = [spec.name for spec in FEATURES if spec.type == "category"]


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
