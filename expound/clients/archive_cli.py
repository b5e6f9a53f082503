"""``expound archive ...``: audit, verify and administer the compliance archive.

``verify`` needs only a bundle and the public key; ``audit`` reads the database itself;
``public-key``, ``hold``, ``release`` and ``expire`` use the server's settings (EXPOUND_*).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from expound.archive.audit import AuditReport, audit_log, audit_stream
from expound.archive.checkpoint import Checkpoint, load_private_key, load_public_key, public_key_pem
from expound.clients.client import ExplainClient
from expound.clients.verify import BundleInvalid, checkpoint_from_pb, verify_bundle
from expound.settings import Settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``archive`` and its actions to the command line."""
    archive = commands.add_parser("archive", help="audit, verify and administer the archive")
    actions = archive.add_subparsers(dest="action", required=True)

    audit = actions.add_parser("audit", help="recompute the whole log from the database")
    source = audit.add_mutually_exclusive_group()
    source.add_argument("--db", type=Path, help="SQLite archive file")
    source.add_argument("--dsn", help="PostgreSQL archive (libpq conninfo or URL)")
    audit.add_argument("--public-key", type=Path, help="also check checkpoint signatures")
    audit.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        help="a checkpoint JSON kept outside the database (repeatable): catches truncation",
    )

    verify = actions.add_parser("verify", help="check a proof bundle with the public key")
    verify.add_argument("bundle", type=Path, help="bundle JSON, or JSON lines of bundles")
    verify.add_argument("--public-key", type=Path, required=True)

    actions.add_parser(
        "checkpoint", help="fetch the server's latest signed checkpoint as JSON, to keep"
    )

    key = actions.add_parser("public-key", help="print the signing key's public half (PEM)")
    key.add_argument("--key", type=Path, help="private key file (default: settings)")

    hold = actions.add_parser("hold", help="place a legal hold on a record")
    hold.add_argument("record_id")
    hold.add_argument("--reason", required=True)
    release = actions.add_parser("release", help="release a record's legal hold")
    release.add_argument("record_id")
    expire = actions.add_parser(
        "expire", help="remove payloads past retention (all due, or the ones named)"
    )
    expire.add_argument("record_ids", nargs="*")


def _print_report(report: AuditReport) -> int:
    if report.ok:
        print(
            f"ok: {report.size} entries, {report.checkpoints} checkpoints verified; "
            f"root {report.root.hex()}"
        )
        return 0
    print(f"FAILED at seq {report.first_bad_seq}: {report.problem}")
    return 1


async def _audit(args: argparse.Namespace, settings: Settings) -> int:
    public_key = load_public_key(args.public_key.read_bytes()) if args.public_key else None
    published = [Checkpoint.from_json(json.loads(path.read_text())) for path in args.checkpoint]
    dsn = args.dsn or (settings.archive_dsn if settings.archive_backend == "postgres" else "")
    if dsn and not args.db:
        import psycopg

        from expound.archive.postgres import read_log as read_postgres

        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            rows, checkpoints = await read_postgres(conn)
            report = await audit_stream(rows, [*checkpoints, *published], public_key)
            return _print_report(report)
    from expound.archive.sqlite import read_log as read_sqlite

    path = args.db or settings.archive_path
    if not path.exists():
        raise OSError(f"no archive at {path}")
    rows_, checkpoints_ = read_sqlite(path)
    report = await asyncio.to_thread(audit_log, rows_, [*checkpoints_, *published], public_key)
    return _print_report(report)


def _verify(args: argparse.Namespace) -> int:
    pem = args.public_key.read_bytes()
    failures = 0
    text = args.bundle.read_text()
    try:
        bundles = [json.loads(text)]
    except json.JSONDecodeError:
        bundles = [json.loads(line) for line in text.splitlines() if line.strip()]
    for bundle in bundles:
        try:
            verified = verify_bundle(bundle, pem)
        except BundleInvalid as exc:
            failures += 1
            print(f"INVALID {bundle.get('record_id', '?')}: {exc}")
            continue
        checkpoint = verified.checkpoint
        state = " (payload expired)" if verified.expired else ""
        print(
            f"verified {verified.record_id}: leaf {verified.leaf_index} of log "
            f"{checkpoint.log_id!r} at size {checkpoint.size}, signed {checkpoint.timestamp}"
            f"{state}"
        )
    return 1 if failures else 0


async def _administer(args: argparse.Namespace, settings: Settings) -> int:
    from expound.archive.factory import open_archive

    archive = await open_archive(settings)
    try:
        if args.action == "hold":
            record = await archive.set_legal_hold(args.record_id, True, args.reason)
            print(f"held {record.record_id} (seq {record.seq})")
        elif args.action == "release":
            record = await archive.set_legal_hold(args.record_id, False, "")
            print(f"released {record.record_id}; retained until {record.retain_until}")
        else:
            report = await archive.expire(args.record_ids or None)
            for expired, tombstone in zip(report.expired, report.tombstones, strict=True):
                print(f"expired {expired.record_id} (seq {expired.seq}); tombstone {tombstone.seq}")
            print(f"{len(report.expired)} payload(s) removed")
    finally:
        await archive.aclose()
    return 0


def run(args: argparse.Namespace) -> int:
    """Runs one ``archive`` action; returns the exit status."""
    if args.action == "verify":
        return _verify(args)
    if args.action == "checkpoint":
        with ExplainClient(args.target, timeout=args.timeout) as client:
            checkpoint = checkpoint_from_pb(client.get_checkpoint())
        print(json.dumps(checkpoint.to_json(), indent=2))
        return 0
    settings = Settings()
    if args.action == "public-key":
        key = load_private_key(args.key or settings.signing_key_path)
        sys.stdout.write(public_key_pem(key).decode("ascii"))
        return 0
    if args.action == "audit":
        return asyncio.run(_audit(args, settings))
    return asyncio.run(_administer(args, settings))
