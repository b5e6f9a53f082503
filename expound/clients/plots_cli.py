"""``expound plots ...``: PNG files of one decision or of a cohort.

``expound plots waterfall RECORD_ID --out FILE.png`` draws an archived decision;
``expound plots cohort --model M [--since T] [--until T] --out DIR`` draws a cohort from the
archive (or, with ``--batch RESULTS``, from an explain-batch results folder, no server
needed) as one PNG per plot of :data:`expound.plots.COHORT_PLOTS`. Needs the notebook extra.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from expound.clients.client import ExplainClient


def _utc_time(text: str) -> datetime:
    """An ISO 8601 time (one without an offset is taken as UTC, as the server takes it)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``plots waterfall`` and ``plots cohort``."""
    plots = commands.add_parser("plots", help="PNG plots of a decision or a cohort")
    actions = plots.add_subparsers(dest="action", required=True)
    waterfall = actions.add_parser("waterfall", help="one archived decision's attributions")
    waterfall.add_argument("record_id")
    waterfall.add_argument("--out", type=Path, help="PNG file (default: RECORD_ID.png)")
    waterfall.add_argument("--max-display", type=int, default=10, help="features shown")
    cohort = actions.add_parser(
        "cohort",
        help="beeswarm, mean |SHAP|, reason codes and fallback/gate-rejection rates",
    )
    cohort.add_argument("--model", required=True)
    cohort.add_argument("--since", type=_utc_time, help="ISO 8601 time, inclusive")
    cohort.add_argument("--until", type=_utc_time, help="ISO 8601 time, exclusive")
    cohort.add_argument(
        "--batch", type=Path, help="an explain-batch results folder instead of the archive"
    )
    cohort.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    cohort.add_argument("--max-display", type=int, default=12, help="features shown")


def run(args: argparse.Namespace, client: ExplainClient) -> int:
    """Writes the PNG files and names them; 1 when the cohort holds no decision."""
    from expound.clients.batch_results import read_frame
    from expound.clients.frames import records_to_frame
    from expound.plots import cohort_pngs, select_cohort, waterfall_png

    if args.action == "waterfall":
        record = client.get_record(args.record_id)
        if not record.HasField("response"):
            raise ValueError(f"record {args.record_id} holds no decision ({record.kind})")
        out = args.out or Path(f"{args.record_id}.png")
        out.write_bytes(waterfall_png(record.response, args.max_display))
        print(out)
        return 0
    if args.batch is not None:
        frame = select_cohort(read_frame(args.batch), args.model, args.since, args.until)
    else:
        frame = records_to_frame(
            client.iter_records(model_id=args.model, since=args.since, until=args.until)
        )
    if frame.empty or frame["base_value"].isna().all():
        print(f"no decisions of {args.model} in that range")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for name, png in cohort_pngs(frame, args.max_display).items():
        path = args.out / f"{name}.png"
        path.write_bytes(png)
        print(path)
    return 0
