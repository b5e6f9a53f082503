"""The model registry: loads every model directory under a root, checking its hashes,
and hands out each model together with its explainer.

A model directory holds ``manifest.json``, the artifact it names and the SHAP background
set. Loading fails loudly (ModelIntegrityError) when a hash does not match: a model that
is not exactly the one its manifest describes is never served. The explainer is built by
the factory the caller passes (``expound.explainers.algorithms.build_explainer``), so this
layer does not import the explainers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from expound.domain import FeatureScalar
from expound.errors import ModelIntegrityError, ModelNotFound
from expound.models.encoding import encode_rows
from expound.models.explainer import Explainer
from expound.models.manifest import ModelManifest
from expound.models.scoring import ScoringModel, load_scoring_model


@dataclass(frozen=True)
class LoadedModel:
    """A manifest with its verified artifact and encoded background set."""

    manifest: ModelManifest
    scorer: ScoringModel
    background: npt.NDArray[np.float64]
    directory: Path

    def encode(self, features: dict[str, FeatureScalar]) -> npt.NDArray[np.float64]:
        """Encodes one validated row as a (1, n_features) matrix."""
        return encode_rows(self.manifest.features, [features], self.manifest.model_columns())


@dataclass(frozen=True)
class ServedModel(LoadedModel):
    """A loaded model with the explainer its manifest names: what the service explains."""

    explainer: Explainer


def _verified_bytes(path: Path, expected_sha256: str, what: str) -> bytes:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ModelIntegrityError(f"cannot read {what} {path}: {exc.strerror}") from exc
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected_sha256:
        raise ModelIntegrityError(
            f"{what} {path} has sha256 {actual}, manifest says {expected_sha256}"
        )
    return content


def load_model(directory: Path) -> LoadedModel:
    """Loads one model directory, verifying the artifact and background hashes."""
    try:
        manifest = ModelManifest.model_validate_json((directory / "manifest.json").read_text())
    except (OSError, ValidationError) as exc:
        raise ModelIntegrityError(f"invalid manifest in {directory}: {exc}") from exc
    artifact = directory / manifest.artifact
    _verified_bytes(artifact, manifest.artifact_sha256, "artifact")
    background_rows = json.loads(
        _verified_bytes(directory / manifest.background, manifest.background_sha256, "background")
    )
    scorer = load_scoring_model(manifest, directory)
    background = encode_rows(manifest.features, background_rows, manifest.model_columns())
    return LoadedModel(manifest=manifest, scorer=scorer, background=background, directory=directory)


class ModelRegistry:
    """The models one server explains, each with its explainer, keyed by model id."""

    def __init__(self, models: list[ServedModel]) -> None:
        self._models = {m.manifest.model_id: m for m in models}

    @classmethod
    def from_directory(
        cls, root: Path, build_explainer: Callable[[LoadedModel], Explainer]
    ) -> ModelRegistry:
        """Loads every subdirectory of ``root`` that has a manifest, and its explainer."""
        if not root.is_dir():
            raise ModelIntegrityError(f"model directory {root} does not exist (run `make models`)")
        loaded = [load_model(d) for d in sorted(root.iterdir()) if (d / "manifest.json").is_file()]
        if not loaded:
            raise ModelIntegrityError(f"no models under {root} (run `make models`)")
        return cls(
            [
                ServedModel(
                    manifest=m.manifest,
                    scorer=m.scorer,
                    background=m.background,
                    directory=m.directory,
                    explainer=build_explainer(m),
                )
                for m in loaded
            ]
        )

    def get(self, model_id: str) -> ServedModel:
        """Returns the model with its explainer, or raises ModelNotFound."""
        try:
            return self._models[model_id]
        except KeyError:
            raise ModelNotFound(
                f"unknown model {model_id!r}; known: {sorted(self._models)}"
            ) from None

    def all(self) -> list[ServedModel]:
        """All models, ordered by id."""
        return [self._models[k] for k in sorted(self._models)]
