"""``expound models import``: a trained model and a sample of its data -> a model directory.

Runs locally (no server): see :mod:`expound.models.importing`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from expound.errors import ModelIntegrityError


def add_parser(model_actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``import`` to the ``models`` subcommands."""
    importing = model_actions.add_parser(
        "import", help="write a model directory from a trained model and a data sample"
    )
    importing.add_argument("artifact", type=Path, help=".txt, .json/.ubj, .cbm, .skops or .pkl")
    importing.add_argument("--data", type=Path, required=True, help="CSV sample of model inputs")
    importing.add_argument("--target", help="the sample's label column (left out of the inputs)")
    importing.add_argument("--out", type=Path, required=True, help="model directory to write")
    importing.add_argument("--model-id", help="default: the directory's name")
    importing.add_argument(
        "--categorical",
        default="",
        help="comma-separated integer-coded columns that are categories",
    )
    importing.add_argument(
        "--trust-pickle",
        action="store_true",
        help="read a pickle (it runs code when read: only a file you trust); converted here",
    )


def run(args: argparse.Namespace) -> int:
    """Imports the model; prints the directory and what is left to write (TODO)."""
    from expound.models.importing import import_model
    from expound.models.todos import todo_fields

    try:
        manifest = import_model(
            args.artifact,
            args.data,
            args.out,
            target=args.target,
            trust_pickle=args.trust_pickle,
            categorical=[c for c in args.categorical.split(",") if c],
            model_id=args.model_id,
        )
    except (OSError, ValueError, ModelIntegrityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    todos = todo_fields(manifest.model_dump(mode="json"))
    print(
        f"wrote {args.out} ({manifest.kind}, explainer {manifest.explainer}, "
        f"score {manifest.score.space} of class {manifest.score.output}); "
        f"{len(todos)} TODO left in manifest.json:"
    )
    for path in todos:
        print(f"  {path}")
    return 0
