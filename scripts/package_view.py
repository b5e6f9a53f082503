"""Builds build/typecheck/expound: a symlink view of the package as it installs.

The package maps top-level folders to subpackages (pyproject's package-dir). Type
checkers cannot follow setuptools' editable import hook, so `make typecheck` points mypy
at this view, made from the same mapping.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIEW = ROOT / "build" / "typecheck"


def main() -> None:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    shutil.rmtree(VIEW, ignore_errors=True)
    package = VIEW / "expound"
    package.mkdir(parents=True)
    for source in (ROOT / mapping["expound"]).iterdir():
        if source.suffix in {".py", ".typed"}:
            (package / source.name).symlink_to(source)
    for name, folder in mapping.items():
        if name != "expound":
            (package / name.split(".", 1)[1]).symlink_to(ROOT / folder, target_is_directory=True)


if __name__ == "__main__":
    main()
