"""The model registry: loads every model directory under a root, checking its hashes,
and hands out each model together with its explainer.

A model directory holds ``manifest.json``, the artifact it names and the SHAP background
set. A directory is served only when all of it checks out: the manifest is valid JSON with
no TODO left (:mod:`expound.models.todos`) and passes the schema, the artifact and the
background match their sha256, the artifact loads, and the explainer explains the first
background row (which also warms it, so the first call does not pay the cold cost).
Anything else makes that one model *unavailable*, with a reason that names the directory,
and never stops the others. The explainer is built by the factory the caller passes
(``expound.explainers.algorithms.build_explainer``), so this layer does not import the
explainers.

:meth:`ModelRegistry.reload` rereads the root and swaps in the new set at once: it yields
the state a restart would, reusing the models whose directory did not change. A caller
takes a :class:`ServedModel` once per call and keeps it, so a call in flight finishes on
the version it started with.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
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
from expound.models.todos import todo_fields

MANIFEST = "manifest.json"
ExplainerFactory = Callable[["LoadedModel"], Explainer]


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


@dataclass(frozen=True)
class UnavailableModel:
    """A model directory that could not be served, and why.

    ``model_id`` is the manifest's id where the manifest could be read that far, else the
    directory's name.
    """

    model_id: str
    directory: Path
    reason: str


@dataclass(frozen=True)
class ReloadReport:
    """What a reload changed, by model id (each list sorted)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unavailable: list[UnavailableModel] = field(default_factory=list)


# A reason travels in gRPC trailers and log lines: name the first few, point to the rest.
MAX_TODOS_SHOWN = 8


def _verified_bytes(directory: Path, name: str, expected_sha256: str, what: str) -> bytes:
    path = directory / name
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ModelIntegrityError.of(
            directory, f"cannot read {what} {path}: {exc.strerror}"
        ) from exc
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected_sha256:
        raise ModelIntegrityError.of(
            directory,
            f"{what} {path} has sha256 {actual}, manifest says {expected_sha256} "
            f"(field {what}_sha256)",
        )
    return content


def _validation_problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(manifest)'}: {error['msg']}"
        for error in exc.errors()
    )


def read_manifest(directory: Path) -> ModelManifest:
    """Reads and validates ``manifest.json``, refusing one with a TODO left.

    Raises:
        ModelIntegrityError: naming the directory and the offending fields.
    """
    try:
        text = (directory / MANIFEST).read_text()
    except OSError as exc:
        raise ModelIntegrityError.of(directory, f"cannot read {MANIFEST}: {exc.strerror}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelIntegrityError.of(
            directory, f"invalid manifest: {MANIFEST} is not JSON ({exc})"
        ) from exc
    todos = todo_fields(document)
    if todos:
        shown = ", ".join(todos[:MAX_TODOS_SHOWN])
        more = len(todos) - MAX_TODOS_SHOWN
        if more > 0:
            shown += f" and {more} more (`expound models check` lists them all)"
        raise ModelIntegrityError.of(
            directory, f"manifest has {len(todos)} TODO(s) left, in: {shown}"
        )
    try:
        return ModelManifest.model_validate(document)
    except ValidationError as exc:
        raise ModelIntegrityError.of(
            directory, f"invalid manifest: {_validation_problems(exc)}"
        ) from exc


def load_model(directory: Path) -> LoadedModel:
    """Loads one model directory, verifying the artifact and background hashes.

    Raises:
        ModelIntegrityError: naming the directory and, where there is one, the field.
    """
    manifest = read_manifest(directory)
    _verified_bytes(directory, manifest.artifact, manifest.artifact_sha256, "artifact")
    background_bytes = _verified_bytes(
        directory, manifest.background, manifest.background_sha256, "background"
    )
    try:
        scorer = load_scoring_model(manifest, directory)
    except ModelIntegrityError:
        raise  # already names the directory and the field
    except Exception as exc:  # the model libraries' own errors, translated at this boundary
        raise ModelIntegrityError.of(
            directory,
            f"cannot load artifact {manifest.artifact} as {manifest.kind}: "
            f"{type(exc).__name__}: {exc}",
        ) from exc
    try:
        background = encode_rows(
            manifest.features, json.loads(background_bytes), manifest.model_columns()
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError.of(
            directory, f"background {manifest.background} does not fit the features: {exc!r}"
        ) from exc
    return LoadedModel(manifest=manifest, scorer=scorer, background=background, directory=directory)


def serve_model(directory: Path, build_explainer: ExplainerFactory) -> ServedModel:
    """Loads one model directory and builds and warms its explainer.

    The warm-up explains the first background row: the explainer's one-off costs (imports,
    compiled kernels, caches) are paid here rather than by the first caller, and an
    explainer that cannot explain this model is refused now rather than at the first call.

    Raises:
        ModelIntegrityError: naming the directory.
    """
    model = load_model(directory)
    try:
        explainer = build_explainer(model)
    except ModelIntegrityError as exc:
        if exc.message.startswith(f"model directory {directory}"):
            raise  # the explainer named the directory itself: once is enough
        raise ModelIntegrityError.of(directory, exc.message) from exc
    try:
        warm = explainer.explain_row(model.background[:1])
    except Exception as exc:  # the explainer libraries' own errors, translated here
        raise ModelIntegrityError.of(
            directory,
            f"explainer {explainer.algorithm} fails on the first background row: "
            f"{type(exc).__name__}: {exc}",
        ) from exc
    columns = len(model.manifest.model_columns())
    if warm.contributions.shape != (columns,):
        raise ModelIntegrityError.of(
            directory,
            f"explainer {explainer.algorithm} returned {warm.contributions.shape} "
            f"contributions for {columns} model columns",
        )
    return ServedModel(
        manifest=model.manifest,
        scorer=model.scorer,
        background=model.background,
        directory=directory,
        explainer=explainer,
    )


def _declared_id(directory: Path) -> str:
    """The model id a directory's manifest declares, or the directory's name."""
    try:
        declared = json.loads((directory / MANIFEST).read_text()).get("model_id")
    except (OSError, ValueError, AttributeError):
        return directory.name
    return declared if isinstance(declared, str) and declared else directory.name


def _model_directories(root: Path) -> list[Path]:
    if not root.is_dir():
        raise ModelIntegrityError(f"model directory {root} does not exist (run `make models`)")
    directories = [d for d in sorted(root.iterdir()) if (d / MANIFEST).is_file()]
    if not directories:
        raise ModelIntegrityError(f"no models under {root} (run `make models`)")
    return directories


@dataclass(frozen=True)
class _Snapshot:
    """One consistent set of models: swapped whole, never changed in place."""

    served: dict[str, ServedModel]
    unavailable: dict[str, UnavailableModel]
    manifest_sha256: dict[Path, str]


def _still_intact(model: ServedModel) -> bool:
    manifest = model.manifest
    try:
        _verified_bytes(model.directory, manifest.artifact, manifest.artifact_sha256, "artifact")
        _verified_bytes(
            model.directory, manifest.background, manifest.background_sha256, "background"
        )
    except ModelIntegrityError:
        return False
    return True


class ModelRegistry:
    """The models one server explains, each with its explainer, keyed by model id."""

    def __init__(self, root: Path, build_explainer: ExplainerFactory) -> None:
        self._root = root
        self._build_explainer = build_explainer
        self._reloading = threading.Lock()
        self._snapshot = _Snapshot({}, {}, {})

    @classmethod
    def from_directory(cls, root: Path, build_explainer: ExplainerFactory) -> ModelRegistry:
        """Loads every subdirectory of ``root`` that has a manifest, and its explainer.

        A directory that fails to load is reported unavailable (see :meth:`unavailable`);
        only a missing root, or one without any model directory, is an error.

        Raises:
            ModelIntegrityError: ``root`` is missing or holds no model directory.
        """
        registry = cls(root, build_explainer)
        registry.reload()
        return registry

    def reload(self) -> ReloadReport:
        """Rereads the root and swaps in what it holds now; sync (run it off the loop).

        A directory whose manifest is byte-identical to the one served, with its artifact
        and background still matching their hashes, keeps its loaded model and explainer.

        Raises:
            ModelIntegrityError: the root is missing or holds no model directory; the models
                served until now stay served.
        """
        with self._reloading:
            before = self._snapshot
            reusable = {m.directory: m for m in before.served.values()}
            served: dict[str, ServedModel] = {}
            unavailable: dict[str, UnavailableModel] = {}
            manifest_sha256: dict[Path, str] = {}
            for directory in _model_directories(self._root):
                model_id = _declared_id(directory)
                try:
                    digest = hashlib.sha256((directory / MANIFEST).read_bytes()).hexdigest()
                    manifest_sha256[directory] = digest
                    previous = reusable.get(directory)
                    if (
                        previous is not None
                        and before.manifest_sha256.get(directory) == digest
                        and _still_intact(previous)
                    ):
                        model = previous
                    else:
                        model = serve_model(directory, self._build_explainer)
                    if model.manifest.model_id in served:
                        raise ModelIntegrityError.of(
                            directory,
                            f"model id {model.manifest.model_id} is already served from "
                            f"{served[model.manifest.model_id].directory}",
                        )
                except (ModelIntegrityError, OSError) as exc:
                    reason = exc.message if isinstance(exc, ModelIntegrityError) else str(exc)
                    key = model_id if model_id not in unavailable else str(directory)
                    unavailable[key] = UnavailableModel(model_id, directory, reason)
                    continue
                served[model.manifest.model_id] = model
            self._snapshot = _Snapshot(served, unavailable, manifest_sha256)
        old, new = before.served, served
        return ReloadReport(
            added=sorted(set(new) - set(old)),
            changed=sorted(k for k in set(new) & set(old) if new[k] is not old[k]),
            removed=sorted(set(old) - set(new)),
            unchanged=sorted(k for k in set(new) & set(old) if new[k] is old[k]),
            unavailable=sorted(unavailable.values(), key=lambda u: str(u.directory)),
        )

    def get(self, model_id: str) -> ServedModel:
        """Returns the model with its explainer.

        Raises:
            ModelIntegrityError: the model's directory is there but could not be served.
            ModelNotFound: no directory declares this model.
        """
        model = self.describe(model_id)
        if isinstance(model, UnavailableModel):
            raise ModelIntegrityError(f"model {model_id} is unavailable: {model.reason}")
        return model

    def describe(self, model_id: str) -> ServedModel | UnavailableModel:
        """The served model, or the unavailable one with its reason.

        Raises:
            ModelNotFound: no directory declares this model.
        """
        snapshot = self._snapshot
        found = snapshot.served.get(model_id) or snapshot.unavailable.get(model_id)
        if found is None:
            raise ModelNotFound(f"unknown model {model_id!r}; known: {sorted(snapshot.served)}")
        return found

    def all(self) -> list[ServedModel]:
        """All served models, ordered by id."""
        served = self._snapshot.served
        return [served[k] for k in sorted(served)]

    def unavailable(self) -> list[UnavailableModel]:
        """The model directories that could not be served, ordered by directory."""
        return sorted(self._snapshot.unavailable.values(), key=lambda u: str(u.directory))
