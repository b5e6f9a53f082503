"""The ``expound`` command: run the server, explain a decision, read models and records."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# gRPC's core logs at INFO what a peer sends, raw (a GOAWAY's debug text, newlines and
# terminal escapes included: forged log lines). Only its errors belong in an operator's log,
# and it reads the level once, on import: so before the first import of grpc in the process.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc
from google.protobuf import json_format
from pydantic import ValidationError

from expound.clients import archive_cli, auth_cli, export, extras, import_cli, notice, plots_cli
from expound.clients.bundles import bundle_from_record
from expound.clients.channels import ChannelSecurity
from expound.clients.client import AUDIENCES, ExplainClient, error_details
from expound.errors import ServiceError
from expound.observability.logs import configure_logging
from expound.settings import Settings
from expound.times import format_utc
from expound.v1 import explain_pb2 as pb
from expound.wire import reason_third_person

DEFAULT_TARGET = "127.0.0.1:50051"
UINT32_MAX = 2**32 - 1
"""The largest value of a uint32 wire field."""


def _plain(doc: str | None) -> str:
    """A docstring as --help shows it: without reStructuredText's literal quotes."""
    return (doc or "").replace("``", "")


def _as_json(message: Any) -> str:
    return json.dumps(
        json_format.MessageToDict(message, preserving_proto_field_name=True), indent=2
    )


def _value(value: pb.FeatureValue) -> str:
    kind = value.WhichOneof("kind")
    if kind == "number":
        return f"{value.number:g}"
    return str(getattr(value, kind)) if kind and kind != "null" else "null"


def _print_explanation(response: pb.ExplainResponse) -> None:
    prediction = response.prediction
    print(
        f"decision: {prediction.decision}  (score {prediction.score:.3f} = "
        f"{prediction.score_meaning}; threshold {prediction.threshold:g})"
    )
    attributions = response.attributions
    print(f"\ntop attributions ({attributions.units}; base {attributions.base_value:+.3f}):")
    for item in attributions.items[:6]:
        print(
            f"  {item.rank:>2}. {item.feature:<26} {_value(item.value):<22} "
            f"{item.contribution:+.3f}"
        )
    # In the third person: the command line's readers are operators, analysts and compliance
    # (the notice states the applicant's wording; --json gives both).
    print("\nprincipal reasons:")
    for reason in response.principal_reasons:
        print(f"  {reason.rank}. [{reason.code}] {reason_third_person(reason)}")
    if not response.principal_reasons:
        print("  (none: favourable decision)")
    note = f"  (fallback: {response.fallback_reason})" if response.fallback else ""
    print(f"\nexplanation:{note}\n  {response.selected.text}")
    print(f"\nrecord id: {response.record_id or '(none: a what-if, not archived)'}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _settings_error(error: ValidationError) -> str:
    """A settings error naming each environment variable (the options set the same ones)."""
    problems = [
        f"EXPOUND_{'_'.join(str(part) for part in problem['loc']).upper()}: {problem['msg']}"
        for problem in error.errors()
    ]
    return "invalid settings: " + "; ".join(problems)


def _cmd_serve(args: argparse.Namespace) -> int:
    # Paths given on the command line are the caller's, relative to where it runs; those
    # from the environment or the defaults are resolved against EXPOUND_HOME by Settings.
    overrides: dict[str, Any] = {}
    if args.port is not None:
        overrides["port"] = args.port
    if args.model_dir is not None:
        overrides["model_dir"] = args.model_dir.absolute()
    if args.archive is not None:
        overrides["archive_path"] = args.archive.absolute()
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        print(f"error: {_settings_error(error)}", file=sys.stderr)
        return 2
    from expound.errors import StartupError
    from expound.server.app import serve

    configure_logging(settings.log_format, settings.log_level)
    try:
        asyncio.run(serve(settings))
    except StartupError as error:
        print(f"error: {_one_line(str(error))}", file=sys.stderr)
        return 2
    return 0


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _applicant(path: Path) -> dict[str, Any]:
    """The feature values of ``--applicant``: a JSON object of strings, numbers, booleans, null.

    Raises:
        ValueError: Naming the option and the file, for a file that cannot be read, is not
            JSON, or is not such an object.
    """
    try:
        features = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"--applicant {path}: {error.strerror or error}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"--applicant {path}: not valid JSON: {error}") from error
    if not isinstance(features, dict):
        kind = _JSON_TYPES.get(type(features), "a number or null")
        raise ValueError(f"--applicant {path}: expected a JSON object of features, got {kind}")
    for name, value in features.items():
        if isinstance(value, (dict, list)):
            raise ValueError(
                f"--applicant {path}: feature {name!r} is {_JSON_TYPES[type(value)]}; "
                "feature values are strings, numbers, booleans or null"
            )
    return features


def _whole_number(maximum: int) -> Callable[[str], int]:
    """An argparse type: an integer from 0 to ``maximum`` (the wire field's range)."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not 0 <= number <= maximum:
            raise argparse.ArgumentTypeError(f"must be from 0 to {maximum}, not {number}")
        return number

    return parse


def _cmd_explain(args: argparse.Namespace, client: ExplainClient) -> int:
    features = _applicant(Path(args.applicant))
    response = client.explain(
        args.model,
        features,
        audience=args.audience,
        question=args.question,
        decision_id=args.decision_id,
        idempotency_key=args.idempotency_key,
        num_candidates=args.candidates,
        seed=args.seed,
        what_if=args.what_if,
    )
    if args.json:
        print(_as_json(response))
    else:
        _print_explanation(response)
    return 0


def _cmd_explain_batch(args: argparse.Namespace, client: ExplainClient) -> int:
    from expound.clients import batch

    try:
        report = batch.run_batch(
            client.explain_batch,
            Path(args.file),
            Path(args.out),
            args.model,
            id_column=args.id_column,
            what_if=args.what_if,
            concurrency=args.concurrency,
            audience=AUDIENCES[args.audience],
            flush_rows=args.flush_rows,
            retries=args.retries,
            describe=client.get_model,
        )
    except grpc.RpcError:
        if Path(args.out).exists():  # else it failed before the first item (GetModel)
            print(f"the results so far are in {args.out}; run again to resume", file=sys.stderr)
        raise
    print(batch.summary(report), file=sys.stderr)
    return 0


def _cmd_explain_batch_ray(args: argparse.Namespace) -> int:
    """The batch on a Ray cluster: the service runs in its workers, on this shell's
    EXPOUND_* settings (no server, no --target)."""
    try:
        from expound.clients import ray_batch
    except ImportError as error:  # the ray extra is not installed
        print(
            f"error: --engine ray needs Ray: pip install 'expound[ray]' ({error})", file=sys.stderr
        )
        return 2
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: {_settings_error(error)}", file=sys.stderr)
        return 2
    try:
        report = ray_batch.run_ray_batch(
            settings,
            Path(args.file),
            Path(args.out),
            args.model,
            workers=args.workers,
            address=args.ray_address,
            id_column=args.id_column,
            what_if=args.what_if,
            audience=AUDIENCES[args.audience],
            principal=args.principal,
            concurrency=args.concurrency,
            flush_rows=args.flush_rows,
        )
    except ValueError as error:  # BatchInputError: the file or the output folder
        print(f"error: {_one_line(str(error))}", file=sys.stderr)
        return 2
    except Exception as error:  # a worker could not start or died: Ray says which
        print(f"error: the Ray batch failed: {_one_line(str(error))[:2000]}", file=sys.stderr)
        print(f"the results so far are in {args.out}; run again to resume", file=sys.stderr)
        return 1
    from expound.clients import batch

    print(batch.summary(report), file=sys.stderr)
    return 0


def _cmd_models_check(args: argparse.Namespace) -> int:
    from expound.explainers.algorithms import build_explainer
    from expound.explainers.checking import check_model_directory

    report = check_model_directory(
        args.directory,
        build_explainer,
        sample=args.data,
        target=args.target_column,
        adverse_value=args.adverse_value,
        tolerance=args.tolerance,
    )
    print(report.render())
    return 0 if report.ok else 1


def _cmd_models_reload(client: ExplainClient) -> int:
    report = client.reload_models()
    for what in ("added", "changed", "removed", "unchanged"):
        print(f"{what:<10} {', '.join(getattr(report, what)) or '-'}")
    for info in report.unavailable:
        print(f"unavailable {info.model_id}: {info.unavailable_reason}")
    return 0


def _cmd_models(args: argparse.Namespace, client: ExplainClient) -> int:
    if args.action == "reload":
        return _cmd_models_reload(client)
    if args.action == "list":
        for info in client.list_models():
            if not info.available:
                print(f"{info.model_id:<26} UNAVAILABLE: {info.unavailable_reason}")
                continue
            print(
                f"{info.model_id:<26} {info.version:<8} {info.kind:<10} "
                f"{info.explainer:<28} {info.title}"
            )
        return 0
    info = client.get_model(args.model_id)
    if args.json:
        print(_as_json(info))
        return 0
    if not info.available:
        print(f"{info.model_id}: unavailable: {info.unavailable_reason}")
        return 1
    print(
        f"{info.model_id} {info.version}: {info.title}\n"
        f"  kind {info.kind}, explainer {info.explainer}"
    )
    print(
        f"  score: {info.score_meaning}; {info.adverse_when}\n"
        f"  artifact sha256 {info.artifact_sha256}"
    )
    for spec in info.features:
        allowed = (
            ", ".join(spec.categories)
            if spec.categories
            else (f"{spec.minimum:g}..{spec.maximum:g}" if spec.HasField("minimum") else spec.type)
        )
        flags = " protected" if spec.protected else ""
        print(f"  {spec.name:<24} {spec.description} [{allowed}] {spec.unit}{flags}")
        # The words each code or category stands for, as explanations state them.
        for value in spec.value_labels:
            print(f"  {'':<24}   {value.code} = {value.label}")
        for category in spec.categories:
            if category in spec.category_descriptions:
                print(f"  {'':<24}   {category} = {spec.category_descriptions[category]}")
    for reason in info.reasons:
        other = (
            f" (third person: {reason.neutral_text})" if reason.neutral_text != reason.text else ""
        )
        print(f"  reason {reason.code}: {reason.text}{other} [{', '.join(reason.features)}]")
    return 0


def _moment(option: str, text: str) -> datetime | None:
    """An ISO 8601 time option (None when empty); a bad one is an error naming ``option``."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option}: not an ISO 8601 time: {text!r}") from None


def _cmd_records(args: argparse.Namespace, client: ExplainClient) -> int:
    if args.action == "export":
        records = export.exported_records(
            client,
            since=_moment("--since", args.since),
            until=_moment("--until", args.until),
            model_id=args.model,
        )
        write = export.write_parquet if args.format == "parquet" else export.write_jsonl
        print(f"exported {write(records, args.out)} record(s) with proofs to {args.out}")
        return 0
    if args.action == "notice":
        return notice.run(args, client)
    if args.action == "get":
        record = client.get_record(args.record_id, include_proof=args.proof)
        if args.proof:
            print(json.dumps(bundle_from_record(record), indent=2))
        else:
            print(_as_json(record) if args.json else record.canonical_json)
        return 0
    page = client.list_records(
        model_id=args.model,
        decision_id=args.decision_id,
        since=_moment("--since", args.since),
        until=_moment("--until", args.until),
        page_size=args.page_size,
        page_token=args.page_token,
    )
    for summary in page.records:
        created = format_utc(summary.created_at.ToDatetime(tzinfo=UTC))
        print(
            f"{summary.record_id}  {created}  {summary.model_id:<24} "
            f"{summary.decision:<8} {summary.decision_id}"
        )
    if page.next_page_token:
        print(f"next page: --page-token {page.next_page_token}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="expound", description=_plain(__doc__))
    parser.add_argument("--target", default=DEFAULT_TARGET, help="server address (host:port)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-call deadline, seconds")
    auth_cli.add_security_options(parser)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gRPC server (settings from EXPOUND_* env)")
    serve.add_argument("--port", type=int, help="gRPC port (EXPOUND_PORT)")
    serve.add_argument(
        "--model-dir", type=Path, help="folder of model directories (EXPOUND_MODEL_DIR)"
    )
    serve.add_argument("--archive", type=Path, help="SQLite archive file (EXPOUND_ARCHIVE_PATH)")

    explain = commands.add_parser("explain", help="explain one decision")
    explain.add_argument("--model", required=True, help="a served model's id (models list)")
    explain.add_argument("--applicant", required=True, help="JSON file of feature values")
    explain.add_argument(
        "--audience",
        choices=sorted(AUDIENCES),
        default="applicant",
        help="whom the text is written for (default: applicant)",
    )
    explain.add_argument(
        "--question",
        default="",
        help="a question for the text to answer (data, never instructions)",
    )
    explain.add_argument(
        "--decision-id", default="", help="your id of the decision, kept in its record"
    )
    explain.add_argument(
        "--idempotency-key",
        default="",
        help="a retry with the same key gets the first answer back, not a second record",
    )
    explain.add_argument(
        "--candidates",
        type=_whole_number(UINT32_MAX),
        default=0,
        help="drafts to ask the LLM for (0: the server's default)",
    )
    explain.add_argument(
        "--seed",
        type=_whole_number(2**64 - 1),
        default=0,
        help="drafting seed: the same seed, the same drafts (0: the server's default)",
    )
    explain.add_argument("--json", action="store_true", help="print the full response as JSON")
    explain.add_argument(
        "--what-if", action="store_true", help="explain without archiving (analyst role)"
    )

    explain_batch = commands.add_parser(
        "explain-batch",
        help="explain every row of a CSV or Parquet file into a Parquet results folder",
        description="Streams the rows through ExplainBatch; resumable: a rerun skips the ids "
        "already in --out.",
    )
    explain_batch.add_argument("file", help="a .csv or .parquet file, one decision per row")
    explain_batch.add_argument("--model", required=True)
    explain_batch.add_argument("--out", required=True, help="results folder (Parquet parts)")
    explain_batch.add_argument("--id-column", default="id", help="unique id per row")
    explain_batch.add_argument("--audience", choices=sorted(AUDIENCES), default="applicant")
    explain_batch.add_argument(
        "--what-if", action="store_true", help="archive nothing (analyst role)"
    )
    explain_batch.add_argument(
        "--concurrency", type=_whole_number(1024), default=16, help="items in flight at most"
    )
    explain_batch.add_argument(
        "--flush-rows",
        type=_whole_number(1_000_000),
        default=500,
        help="results per Parquet part (a kill loses at most the unflushed ones; 5 s at most)",
    )
    explain_batch.add_argument(
        "--engine",
        choices=("grpc", "ray"),
        default="grpc",
        help="grpc: stream to the server at --target; ray: run the service in Ray workers "
        "on this shell's EXPOUND_* settings (models, archive, LLM), no server needed",
    )
    explain_batch.add_argument(
        "--workers", type=_whole_number(4096), default=2, help="Ray engine: explain workers"
    )
    explain_batch.add_argument(
        "--ray-address",
        default=None,
        help="Ray engine: a running cluster (e.g. auto, ray://head:10001); default: a local "
        "one with --workers CPUs",
    )
    explain_batch.add_argument(
        "--principal",
        default="ray-batch",
        help="Ray engine: the principal the archived records name",
    )
    explain_batch.add_argument(
        "--retries",
        type=_whole_number(100),
        default=5,
        help="passes over the items the server was too busy for (RESOURCE_EXHAUSTED, "
        "UNAVAILABLE), each after the delay it asked for",
    )

    models = commands.add_parser("models", help="list, show, check or reload models")
    model_actions = models.add_subparsers(dest="action", required=True)
    model_actions.add_parser("list", help="the served models, their versions and states")
    show = model_actions.add_parser(
        "show", help="one model's manifest: features, reason codes, score, threshold"
    )
    show.add_argument("model_id")
    show.add_argument("--json", action="store_true")
    model_actions.add_parser("reload", help="have the server reread its model directory")
    check = model_actions.add_parser(
        "check", help="check a model directory as the server would (no server needed)"
    )
    check.add_argument("directory", type=Path)
    check.add_argument("--data", type=Path, help="CSV sample, one column per feature name")
    check.add_argument(
        "--target", dest="target_column", help="sample column with the actual outcome"
    )
    check.add_argument(
        "--adverse-value", default="1", help="the --target value of an adverse outcome"
    )
    check.add_argument("--tolerance", type=float, default=1e-6, help="additivity tolerance")
    import_cli.add_parser(model_actions)

    records = commands.add_parser("records", help="read archived records")
    record_actions = records.add_subparsers(dest="action", required=True)
    get = record_actions.add_parser("get", help="one record by id, as archived")
    get.add_argument("record_id")
    get.add_argument(
        "--json", action="store_true", help="the record message, not its canonical JSON"
    )
    get.add_argument(
        "--proof", action="store_true", help="print its proof bundle (see expound archive verify)"
    )
    listing = record_actions.add_parser(
        "list", help="record summaries, newest first, by model, decision id or time"
    )
    listing.add_argument("--model", default="")
    listing.add_argument("--decision-id", default="")
    listing.add_argument("--since", default="", help="ISO 8601 time, inclusive")
    listing.add_argument("--until", default="", help="ISO 8601 time, exclusive")
    listing.add_argument(
        "--page-size",
        type=_whole_number(UINT32_MAX),
        default=0,
        help="records per page (0: the server's default; it caps the size)",
    )
    listing.add_argument("--page-token", default="")
    exporting = record_actions.add_parser("export", help="records with proofs, oldest first")
    exporting.add_argument("--since", default="", help="ISO 8601 time, inclusive")
    exporting.add_argument("--until", default="", help="ISO 8601 time, exclusive")
    exporting.add_argument("--model", default="")
    exporting.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
    exporting.add_argument("--out", type=Path, required=True)
    notice.add_options(record_actions.add_parser("notice", help="the same as expound notice"))
    notice.add_options(
        commands.add_parser(
            "notice",
            help="adverse action notice of a record: HTML, PDF or PNG",
            description=_plain(notice.__doc__),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    archive_cli.add_parser(commands)
    auth_cli.add_parser(commands)
    plots_cli.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``expound`` command."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except ModuleNotFoundError as error:
        # A light install (no extra) running a command that needs one.
        print(f"error: {extras.missing_extra_message(error, args.command)}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _cmd_serve(args)
    if args.command == "archive":
        try:
            return archive_cli.run(args)
        except grpc.RpcError as error:
            _print_rpc_error(error, args)
            return 1
        except ValidationError as error:
            print(f"error: {_settings_error(error)}", file=sys.stderr)
            return 2
        except (OSError, ValueError, ServiceError) as exc:
            print(f"error: {_one_line(str(exc))}", file=sys.stderr)
            return 2
    if args.command == "auth":
        try:
            return auth_cli.run(args)
        except ValueError as exc:
            print(f"error: {_one_line(str(exc))}", file=sys.stderr)
            return 2
    if args.command == "explain-batch" and args.engine == "ray":
        return _cmd_explain_batch_ray(args)
    if args.command == "models" and args.action == "check":
        return _cmd_models_check(args)
    if args.command == "models" and args.action == "import":
        return import_cli.run(args)
    handlers = {
        "explain": _cmd_explain,
        "explain-batch": _cmd_explain_batch,
        "models": _cmd_models,
        "records": _cmd_records,
        "notice": notice.run,
        "plots": plots_cli.run,
    }
    try:
        security = auth_cli.security_from(args)
        with ExplainClient(args.target, timeout=args.timeout, security=security) as client:
            return handlers[args.command](args, client)
    except grpc.RpcError as error:
        _print_rpc_error(error, args)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2


# What gRPC's connection errors mean for the command's options: (words in the error, how
# the command dialled: "plain", "tls" without a client certificate, "mtls", or "any"; the
# hint). A server that wants TLS, or a client certificate, just closes the socket.
CONNECTION_HINTS = (
    ("Connection refused", "any", "nothing listens at {target}: is expound serve running there?"),
    (
        "Socket closed",
        "plain",
        "the server may speak TLS: pass --tls-ca CA_FILE (EXPOUND_TLS_CA), and --cert/--key "
        "where it asks for a client certificate",
    ),
    (
        "Socket closed",
        "tls",
        "the server may ask for a client certificate: pass --cert CERT_FILE --key KEY_FILE "
        "(EXPOUND_CLIENT_CERT, EXPOUND_CLIENT_KEY)",
    ),
    (
        "Socket closed",
        "mtls",
        "the server may not trust the client certificate given (another CA's, or expired)",
    ),
    ("WRONG_VERSION_NUMBER", "any", "the server at {target} does not speak TLS: drop --tls-ca"),
    (
        "CERTIFICATE_VERIFY_FAILED",
        "any",
        "the server's certificate is not signed by the CA given with --tls-ca",
    ),
    (
        "Hostname Verification",
        "any",
        "the server's certificate does not name the target's host: connect by a name it "
        "holds or pass --tls-server-name NAME",
    ),
)


def connection_hint(message: str, target: str, security: ChannelSecurity) -> str | None:
    """A hint for an UNAVAILABLE call's message, given how the command dialled."""
    dialled = "mtls" if security.cert is not None else "tls" if security.tls else "plain"
    for words, when, hint in CONNECTION_HINTS:
        if words in message and when in ("any", dialled):
            return hint.format(target=target)
    return None


def _print_rpc_error(error: grpc.RpcError, args: argparse.Namespace) -> None:
    details = error_details(error)
    print(f"error: {details.code}: {details.message}", file=sys.stderr)
    for field, description in details.field_violations:
        print(f"  {field}: {description}", file=sys.stderr)
    if details.code == "UNAVAILABLE":
        hint = connection_hint(details.message, args.target, auth_cli.security_from(args))
        if hint is not None:
            print(f"  hint: {hint}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
