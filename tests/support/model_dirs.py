"""Model directories for the registry tests: copies of the demo models, good and broken."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from expound.models.explainer import Explainer, FloatMatrix, RawAttribution
from expound.models.training import GBM_ID, LOGISTIC_ID

ARTIFACT = "model.lgb.txt"


class WrappedExplainer:
    """A real explainer seen through a test's wrapper: same identity, same rows explained.

    Tests subclass it and override `explain_row` to count, hold or bend the calls.
    """

    def __init__(self, inner: Explainer) -> None:
        self._inner = inner
        self.algorithm = inner.algorithm
        self.library_version = inner.library_version
        self.background_sha256 = inner.background_sha256
        self.sampling_seed = inner.sampling_seed

    def explain_row(self, row: FloatMatrix) -> RawAttribution:
        return self._inner.explain_row(row)


def read_manifest(directory: Path) -> dict[str, Any]:
    return dict(json.loads((directory / "manifest.json").read_text()))


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))


def copy_model(
    models_dir: Path,
    root: Path,
    name: str,
    source: str = GBM_ID,
    change: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Copies demo model ``source`` to ``root/name``, its id set to ``name``, then ``change``."""
    directory = root / name
    shutil.copytree(models_dir / source, directory)
    manifest = read_manifest(directory)
    manifest["model_id"] = name
    if change is not None:
        change(manifest)
    write_manifest(directory, manifest)
    return directory


def retrained_artifact(directory: Path, version: str) -> str:
    """Changes one leaf of the tree model's artifact and declares it as ``version``.

    Returns the new artifact's sha256 (now in the manifest too).
    """
    artifact = directory / ARTIFACT
    text = artifact.read_text()
    # One digit of the first leaf value changed: a valid model file that scores
    # differently. Its length must stay: the file's header records each tree's size, and
    # LightGBM aborts the process on a mismatch.
    digit = text.index(".", text.index("leaf_value=")) + 1
    changed = str((int(text[digit]) + 5) % 10)
    artifact.write_text(text[:digit] + changed + text[digit + 1 :])
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    manifest = read_manifest(directory)
    manifest["version"] = version
    manifest["artifact_sha256"] = digest
    write_manifest(directory, manifest)
    return digest


def _todo(manifest: dict[str, Any]) -> None:
    manifest["features"][0]["description"] = "TODO: say what this is"
    manifest["features"][1]["protected"] = "TODO"
    manifest["reasons"][0]["text"] = "TODO"


def mixed_models(models_dir: Path, root: Path) -> dict[str, Path]:
    """The two demo models and four broken directories beside them, by directory name.

    Broken: ``bad-json`` (manifest is not JSON), ``bad-hash`` (artifact changed after
    hashing), ``no-artifact`` (artifact missing), ``todo-left`` (three TODOs left).
    """
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(models_dir / GBM_ID, root / GBM_ID)
    shutil.copytree(models_dir / LOGISTIC_ID, root / LOGISTIC_ID)
    bad_json = copy_model(models_dir, root, "bad-json")
    (bad_json / "manifest.json").write_text('{"model_id": "bad-json", ')
    bad_hash = copy_model(models_dir, root, "bad-hash")
    (bad_hash / ARTIFACT).write_text((bad_hash / ARTIFACT).read_text() + "\n")
    no_artifact = copy_model(models_dir, root, "no-artifact")
    (no_artifact / ARTIFACT).unlink()
    todo = copy_model(models_dir, root, "todo-left", change=_todo)
    return {
        d.name: d
        for d in (root / GBM_ID, root / LOGISTIC_ID, bad_json, bad_hash, no_artifact, todo)
    }


# What each broken directory's reason must say, after naming the directory.
BROKEN_REASONS = {
    "bad-json": r"invalid manifest: manifest\.json is not JSON",
    "bad-hash": r"artifact .*model\.lgb\.txt has sha256 [0-9a-f]{64}, manifest says .* "
    r"\(field artifact_sha256\)",
    "no-artifact": r"cannot read artifact .*model\.lgb\.txt",
    "todo-left": r"manifest has 3 TODO\(s\) left, in: features\[\w+\]\.description, "
    r"features\[\w+\]\.protected, reasons\[\w+\]\.text",
}


def numbered_categories_model(models_dir: Path, root: Path, name: str, feature: str) -> Path:
    """A copy of the demo GBM whose ``feature`` (a category) has categories "1", "2", ...

    The model sees a category by its position in the list, so renaming the categories in
    the manifest and in the background leaves its decisions as they were.
    """
    numbers: dict[str, str] = {}

    def renumber(manifest: dict[str, Any]) -> None:
        (spec,) = [f for f in manifest["features"] if f["name"] == feature]
        numbers.update({c: str(n) for n, c in enumerate(spec["categories"], start=1)})
        spec["categories"] = list(numbers.values())
        spec["category_descriptions"] = {
            numbers[c]: words for c, words in spec["category_descriptions"].items()
        }
        if spec.get("recourse") and spec["recourse"].get("order"):
            spec["recourse"]["order"] = [numbers[c] for c in spec["recourse"]["order"]]

    directory = copy_model(models_dir, root, name, change=renumber)
    manifest = read_manifest(directory)
    background = json.loads((directory / manifest["background"]).read_text())
    for row in background:
        row[feature] = numbers[row[feature]]
    data = json.dumps(background, indent=0).encode()
    (directory / manifest["background"]).write_bytes(data)
    manifest["background_sha256"] = hashlib.sha256(data).hexdigest()
    write_manifest(directory, manifest)
    return directory
