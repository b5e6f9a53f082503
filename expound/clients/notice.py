"""``expound notice RECORD_ID``: the adverse action notice of an archived record.

Reads the creditor profile, the applicant file and the template set first (a bad one is an
error naming the file, and no record is read for nothing), then the record with its proof,
and writes the notice as HTML, PDF or PNG. What produced it (template id and sha256,
creditor profile sha256, record sha256, the written file's sha256) is printed as JSON, and
lies in the PDF's document information: the archived record never changes, so this is where
the notice's own record is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from datetime import date
from pathlib import Path

from expound.clients.client import ExplainClient
from expound.settings import ClientSettings

FORMATS = ("html", "pdf", "png")


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``notice`` (also ``records notice``)."""
    parser.add_argument("record_id")
    parser.add_argument(
        "--creditor",
        type=Path,
        help="creditor profile, TOML (default: EXPOUND_NOTICE_CREDITOR)",
    )
    parser.add_argument(
        "--applicant",
        type=Path,
        required=True,
        help='JSON file: the applicant\'s "name", "address" lines and, when a credit score '
        'was used, "credit_score" with the "key_factors" its provider gave (none of it is in '
        "the archive)",
    )
    parser.add_argument("--lang", default="en", help="language of the notice (default: en)")
    parser.add_argument("--format", choices=FORMATS, help="default: from --out's suffix, else html")
    parser.add_argument(
        "--templates",
        type=Path,
        help="notice template folder (default: the profile's, EXPOUND_NOTICE_TEMPLATES, "
        "else the templates shipped with expound)",
    )
    parser.add_argument(
        "--date", type=date.fromisoformat, help="date of the notice, YYYY-MM-DD (default: today)"
    )
    parser.add_argument("--out", type=Path, help="file to write (default: stdout)")


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    suffix = args.out.suffix.lower().lstrip(".") if args.out else ""
    return suffix if suffix in FORMATS else "html"


def _write(path: Path, content: bytes) -> None:
    """Writes ``path`` whole or not at all (a notice cut short must never be sent)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(content)
    os.replace(partial, path)


def run(args: argparse.Namespace, client: ExplainClient) -> int:
    """Renders and writes the notice.

    Raises:
        ValueError: (a ``NoticeError``) naming the file at fault.
    """
    from expound import notices

    env = ClientSettings()
    profile = args.creditor or env.notice_creditor
    if profile is None:
        raise ValueError("notice: give --creditor PROFILE.toml (or EXPOUND_NOTICE_CREDITOR)")
    creditor = notices.load_creditor(profile)
    applicant = notices.load_notice_applicant(args.applicant)
    folder = notices.template_folder(
        args.templates, creditor.path, creditor.profile.templates, env.notice_templates
    )
    templates = notices.load_template_set(folder)
    templates.notice_template(args.lang)
    kind = _format(args)
    if kind != "html" and args.out is None and sys.stdout.isatty():
        raise ValueError(f"notice: a {kind.upper()} goes to a file: give --out")
    record = notices.notice_record(client.get_record(args.record_id, include_proof=True))
    notice = notices.compose_notice(
        record, creditor, applicant, templates, args.lang, args.date or date.today()
    )
    content: bytes = notice.html.encode("utf-8")
    if kind != "html":
        content = notices.notice_pdf(notice, templates)
        if kind == "png":
            content = notices.pdf_png(content)
    # The file's own hash: which exact notice was sent, for the creditor's files.
    provenance = dict(
        notice.provenance.as_dict(), format=kind, sha256=hashlib.sha256(content).hexdigest()
    )
    if args.out is None:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        print(json.dumps(provenance), file=sys.stderr)
        return 0
    _write(args.out, content)
    print(json.dumps(dict(provenance, out=str(args.out))))
    return 0
