"""``expound archive ...``: audit, verify and administer the compliance archive.

``verify`` needs only a bundle and the public key; ``audit`` reads the database itself and
needs the public key (or an explicit ``--no-signature-check``). ``hold``, ``release``,
``expire``, ``history`` and ``access-log`` are clients of the service's RPCs: the service
signs every event with its own key, so no admin command needs the private key or write
access to the database. ``public-key`` prints the public half of the key in the settings.
``init`` installs a PostgreSQL archive's schema as its owner (``EXPOUND_ARCHIVE_OWNER_DSN``)
and grants the service role, the user of ``EXPOUND_ARCHIVE_DSN`` unless named.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from pathlib import Path

from expound.archive.audit import AuditReport, audit
from expound.archive.checkpoint import (
    Checkpoint,
    load_private_key,
    load_public_key,
    public_key_pem,
    verifier_key,
)
from expound.clients.auth_cli import security_from
from expound.clients.bundles import BundleInvalid, checkpoint_from_pb, verify_bundle
from expound.clients.client import ExplainClient
from expound.errors import ServiceError
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb

ADMIN_ACTIONS = ("hold", "release", "expire", "history", "access-log")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``archive`` and its actions to the command line."""
    archive = commands.add_parser("archive", help="audit, verify and administer the archive")
    actions = archive.add_subparsers(dest="action", required=True)

    audit = actions.add_parser("audit", help="recompute the whole log from the database")
    source = audit.add_mutually_exclusive_group()
    source.add_argument("--db", type=Path, help="SQLite archive file")
    source.add_argument("--dsn", help="PostgreSQL archive (libpq conninfo or URL)")
    signatures = audit.add_mutually_exclusive_group(required=True)
    signatures.add_argument(
        "--public-key", type=Path, help="the log's public key: checks every checkpoint's signature"
    )
    signatures.add_argument(
        "--no-signature-check",
        action="store_true",
        help="check only the hashes: checkpoints re-signed with another key then pass",
    )
    audit.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        help="a checkpoint JSON kept outside the database (repeatable): catches truncation",
    )

    init = actions.add_parser(
        "init",
        help="install the PostgreSQL archive schema as its owner; create and grant the service "
        "role",
    )
    init.add_argument("--service-role", help="default: the user of EXPOUND_ARCHIVE_DSN")

    verify = actions.add_parser("verify", help="check a proof bundle with the public key")
    verify.add_argument(
        "bundle", type=Path, help="bundle JSON, JSON lines of bundles, or a Parquet export"
    )
    verify.add_argument("--public-key", type=Path, required=True)

    checkpoint = actions.add_parser(
        "checkpoint", help="fetch the server's latest signed checkpoint as JSON, to keep"
    )
    checkpoint.add_argument(
        "--note", action="store_true", help="print the C2SP signed note instead (for witnesses)"
    )

    key = actions.add_parser("public-key", help="print the signing key's public half (PEM)")
    key.add_argument("--key", type=Path, help="private key file (default: settings)")
    key.add_argument(
        "--vkey",
        action="store_true",
        help="print the C2SP signed-note verifier key (name+id+key) instead of PEM",
    )

    hold = actions.add_parser("hold", help="place a legal hold on a record (via the service)")
    hold.add_argument("record_id")
    hold.add_argument("--reason", required=True)
    release = actions.add_parser("release", help="release a record's legal hold")
    release.add_argument("record_id")
    release.add_argument("--reason", required=True)
    expire = actions.add_parser(
        "expire", help="remove payloads past retention (all due, or the ones named)"
    )
    expire.add_argument("record_ids", nargs="*")
    expire.add_argument("--reason", default="", help="default: retention period ended")
    history = actions.add_parser("history", help="a record's holds, releases and expiry")
    history.add_argument("record_id")
    access = actions.add_parser(
        "access-log", help="who read which records, as JSON lines (for auditors)"
    )
    access.add_argument("--after", type=int, default=0, help="continue after this entry")
    access.add_argument("--record-id", default="", help="only the reads of this record")


def _print_report(report: AuditReport) -> int:
    if report.ok:
        print(
            f"ok: {report.size} entries, {report.checkpoints} checkpoints verified; "
            f"root {report.root.hex()}"
        )
        return 0
    print(f"FAILED at seq {report.first_bad_seq}: {report.problem}")
    return 1


def _published_checkpoint(path: Path) -> Checkpoint:
    try:
        return Checkpoint.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"--checkpoint {path}: not a checkpoint JSON: {error}") from error


async def _audit(args: argparse.Namespace, settings: Settings) -> int:
    public_key = load_public_key(args.public_key.read_bytes()) if args.public_key else None
    published = [_published_checkpoint(path) for path in args.checkpoint]
    if args.dsn:
        settings = settings.model_copy(
            update={"archive_backend": "postgres", "archive_dsn": args.dsn}
        )
    elif args.db:
        settings = settings.model_copy(
            update={"archive_backend": "sqlite", "archive_path": args.db}
        )
    from expound.archive.factory import open_archive

    # A DSN may hold a password: it is named by its option, never quoted.
    where = "--dsn" if settings.archive_backend == "postgres" else str(settings.archive_path)
    try:
        store = await open_archive(settings, role="audit")
        try:
            log = await store.read_log()
            log.checkpoints.extend(published)
            report = await audit(log, public_key)
        finally:
            await store.aclose()
    except (ServiceError, OSError, sqlite3.DatabaseError) as error:
        # A corrupt or foreign file is named, not a traceback.
        raise ValueError(f"cannot read the archive {where}: {error}") from error
    return _print_report(report)


async def _init(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from expound.archive.postgres import ensure_service_role, install_schema

    if not settings.archive_owner_dsn:
        raise ValueError("set EXPOUND_ARCHIVE_OWNER_DSN to the schema owner's DSN")

    def user_of(dsn: str) -> str | None:
        """The role a DSN logs in as, if it names one."""
        user = conninfo_to_dict(dsn).get("user") if dsn else None
        return str(user) if user else None

    service = args.service_role or user_of(settings.archive_dsn)
    owner = user_of(settings.archive_owner_dsn)
    if service is None or service == owner:
        raise ValueError("name a service role other than the owner (--service-role)")
    async with await psycopg.AsyncConnection.connect(
        settings.archive_owner_dsn, autocommit=True
    ) as conn:
        created = await ensure_service_role(conn, service)
        await install_schema(conn, service)
    if created:
        print(f"created the login role {service}: give it a password or a client certificate")
    print(f"archive schema installed; {service} may INSERT and SELECT (and expire through")
    print("the owner's guarded function); holds and expiry are the service's RPCs")
    return 0


def _verify(args: argparse.Namespace) -> int:
    pem = args.public_key.read_bytes()
    failures = 0
    if args.bundle.suffix == ".parquet":
        from expound.clients.export import read_parquet_bundles

        bundles = read_parquet_bundles(args.bundle)
    else:
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


def _event_line(event: pb.RecordEvent) -> str:
    return json.dumps(
        {
            "seq": event.seq,
            "kind": event.kind,
            "event_id": event.event_id,
            "record_id": event.record_id,
            "actor": event.actor,
            "reason": event.reason,
            "created_at": event.created_at,
            "target_seq": event.target_seq,
            "hold_event_id": event.hold_event_id,
        }
    )


def _administer(args: argparse.Namespace) -> int:
    security = security_from(args)
    with ExplainClient(args.target, timeout=args.timeout, security=security) as client:
        if args.action == "hold":
            event = client.place_hold(args.record_id, args.reason)
            print(f"held {event.record_id}: hold {event.event_id} (seq {event.seq})")
        elif args.action == "release":
            event = client.release_hold(args.record_id, args.reason)
            print(f"released hold {event.hold_event_id} on {event.record_id} (seq {event.seq})")
        elif args.action == "history":
            for event in client.record_history(args.record_id):
                print(_event_line(event))
        elif args.action == "access-log":
            after = args.after
            while True:
                page = client.access_log(after, record_id=args.record_id)
                for entry in page.entries:
                    line = {
                        "seq": entry.seq,
                        "at": entry.at,
                        "principal": entry.principal,
                        "rpc": entry.rpc,
                        "request_id": entry.request_id,
                        "record_ids": list(entry.record_ids),
                    }
                    print(json.dumps(line))
                if not page.next_after_seq:
                    break
                after = page.next_after_seq
        else:
            tombstones = client.expire_records(args.record_ids, args.reason)
            for tombstone in tombstones:
                print(f"expired {tombstone.record_id}; tombstone seq {tombstone.seq}")
            print(f"{len(tombstones)} payload(s) removed")
    return 0


def run(args: argparse.Namespace) -> int:
    """Runs one ``archive`` action; returns the exit status."""
    if args.action == "verify":
        return _verify(args)
    if args.action == "checkpoint":
        security = security_from(args)
        with ExplainClient(args.target, timeout=args.timeout, security=security) as client:
            checkpoint = checkpoint_from_pb(client.get_checkpoint())
        if args.note:
            sys.stdout.write(checkpoint.note())
        else:
            print(json.dumps(checkpoint.to_json(), indent=2))
        return 0
    if args.action in ADMIN_ACTIONS:
        return _administer(args)
    settings = Settings()
    if args.action == "public-key":
        path = args.key or settings.signing_key_path
        if not path.exists():
            raise ValueError(f"no signing key at {path} (--key or EXPOUND_SIGNING_KEY_PATH)")
        key = load_private_key(path)
        if args.vkey:
            print(verifier_key(settings.archive_log_id, key.public_key()))
        else:
            sys.stdout.write(public_key_pem(key).decode("ascii"))
        return 0
    if args.action == "audit":
        return asyncio.run(_audit(args, settings))
    return asyncio.run(_init(args, settings))
