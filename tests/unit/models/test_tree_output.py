"""Forests and single trees take their output from shap's copy of their trees, checked at
load against the library's own predict_proba on every background row; a model whose copy
disagrees is refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import skops.io

from expound.errors import ModelIntegrityError
from expound.explainers.algorithms import TREE_OUTPUT_TOLERANCE, build_explainer
from expound.explainers.base import attribute
from expound.models.importing import feature_value, import_model
from expound.models.registry import LoadedModel, load_model
from tests.unit.models.conftest import reviewed, write_sample


@pytest.fixture(scope="module")
def forest_dir(
    credit_frame: tuple[pd.DataFrame, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Any]:
    from sklearn.ensemble import RandomForestClassifier

    frame, labels = credit_frame
    forest = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=3, n_jobs=1)
    forest.fit(frame, labels)
    root = tmp_path_factory.mktemp("tree-output")
    skops.io.dump(forest, root / "model.skops")
    sample = write_sample(frame, labels, root / "sample.csv")
    import_model(root / "model.skops", sample, root / "forest", target="target")
    path = root / "forest" / "manifest.json"
    path.write_text(json.dumps(reviewed(json.loads(path.read_text()))))
    return root / "forest", forest


class Shifted:
    """A scorer whose output is off by ``shift``: a library that disagrees with shap."""

    def __init__(self, scorer: Any, shift: float) -> None:
        self._scorer = scorer
        self._shift = shift

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scorer, name)

    def raw(self, rows: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        return np.asarray(self._scorer.raw(rows), dtype=np.float64) + self._shift


def test_the_forest_output_is_the_tree_copy_equal_to_predict_proba(
    forest_dir: tuple[Path, Any], credit_frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    directory, forest = forest_dir
    model = load_model(directory)
    explainer = build_explainer(model)
    frame, _ = credit_frame
    expected = forest.predict_proba(frame.head(40))[:, 1]
    for i, record in enumerate(frame.head(40).to_dict(orient="records")):
        features = {s.name: feature_value(s, record) for s in model.manifest.features}
        raw = explainer.explain_row(model.encode(features))
        assert raw.model_output is not None
        assert raw.model_output == pytest.approx(expected[i], abs=1e-12)
        attributions = attribute(model, explainer, features, 1e-6)
        assert attributions.model_output == raw.model_output


@pytest.mark.parametrize("shift", [0.0, 10 * TREE_OUTPUT_TOLERANCE])
def test_a_forest_whose_tree_copy_disagrees_with_the_library_is_refused(
    forest_dir: tuple[Path, Any], shift: float
) -> None:
    directory, _ = forest_dir
    loaded = load_model(directory)
    model = replace(loaded, scorer=Shifted(loaded.scorer, shift))
    assert isinstance(model, LoadedModel)
    if shift == 0.0:
        build_explainer(model)
        return
    with pytest.raises(ModelIntegrityError) as refused:
        build_explainer(model)
    assert str(directory) in str(refused.value)
    assert "explainer" in str(refused.value) and "own output" in str(refused.value)
