"""The outside forest, imported and its wording written, served over loopback gRPC: one
value and one attribution per one-hot group, P(good) declared and decided as such, the
explanation passing the gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from expound.clients.client import explain_request
from expound.models.importing import feature_value
from expound.models.manifest import ModelManifest
from expound.settings import Settings
from tests.unit.models.conftest import reviewed

MODEL_ID = "outside-forest"


@pytest.fixture
def settings(imported: Path, tmp_path: Path) -> Settings:
    root = tmp_path / "models"
    shutil.copytree(imported, root / MODEL_ID)
    path = root / MODEL_ID / "manifest.json"
    path.write_text(json.dumps(reviewed(json.loads(path.read_text()))))
    return Settings(
        host="127.0.0.1",
        port=0,
        model_dir=root,
        archive_path=tmp_path / "archive.sqlite3",
        signing_key_path=tmp_path / "archive-signing-key.pem",
        grace_seconds=0.5,
        llm_mode="off",
    )


async def test_the_outside_forest_is_served_and_explained(
    stub: Any, outside: dict[str, Any], settings: Settings
) -> None:
    manifest = ModelManifest.model_validate_json(
        (settings.model_dir / MODEL_ID / "manifest.json").read_text()
    )
    forest, data = outside["forest"], outside["data"]
    p_good = forest.predict_proba(data.head(12))[:, 1]
    assert (p_good < 0.5).any() and (p_good >= 0.5).any()
    for i, record in enumerate(data.head(12).to_dict(orient="records")):
        features = {s.name: feature_value(s, record) for s in manifest.features}
        response = await stub.Explain(explain_request(MODEL_ID, features))
        assert response.prediction.score == pytest.approx(p_good[i], abs=1e-9)
        assert response.prediction.adverse is bool(p_good[i] < 0.5)
        assert len(response.attributions.items) == len(manifest.features)
        purpose = next(a for a in response.attributions.items if a.feature == "purpose")
        assert purpose.value.string == features["purpose"]
        total = response.attributions.base_value + sum(
            a.contribution for a in response.attributions.items
        )
        assert total == pytest.approx(response.attributions.model_output, abs=1e-6)
        assert response.selected.faithful and not response.fallback
        if response.prediction.adverse:
            assert response.principal_reasons
            assert all(r.contribution < 0 for r in response.principal_reasons)
            assert np.isclose(response.prediction.threshold, 0.5)
