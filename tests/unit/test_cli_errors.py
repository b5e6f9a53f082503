"""Start-up and command-line mistakes: one line naming the setting, file or option, exit 2.

Each goes through the ``expound`` entry point (``main``), as an operator would meet it;
none may print a traceback. ``serve`` installs signal handlers, so it runs in the main
thread here (plain tests, with ``asyncio.run`` for any set-up that needs a server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from expound.clients.cli import build_parser, main
from expound.clients.client import explain_request
from expound.server.app import running_server
from expound.settings import Settings, default_home
from expound.v1 import explain_pb2_grpc
from tests.conftest import EXAMPLES, GBM


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No EXPOUND_* from the caller's shell; the LLM off; a key file of the test's own."""
    for name in [*os.environ]:
        if name.startswith("EXPOUND_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("EXPOUND_LLM_MODE", "off")
    monkeypatch.setenv("EXPOUND_SIGNING_KEY_PATH", str(tmp_path / "key.pem"))


def failed(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Runs ``expound ARGV``, checks exit 2 and a one-line error; returns that line."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_serve_with_a_missing_model_directory(capsys: pytest.CaptureFixture[str]) -> None:
    line = failed(capsys, "serve", "--model-dir", "/nonexistent", "--port", "0")
    assert "EXPOUND_MODEL_DIR" in line and "/nonexistent" in line


def test_serve_with_a_setting_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    assert "EXPOUND_PORT" in failed(capsys, "serve", "--port", "99999")


def test_serve_on_a_port_in_use(
    capsys: pytest.CaptureFixture[str], models_dir: Path, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = failed(
            capsys,
            "serve",
            "--port",
            str(port),
            "--model-dir",
            str(models_dir),
            "--archive",
            str(tmp_path / "a.sqlite3"),
        )
    assert f"127.0.0.1:{port}" in line and "EXPOUND_PORT" in line


def test_serve_without_the_key_that_signed_its_log(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    denied_applicant: dict[str, Any],
) -> None:
    key = tmp_path / "key.pem"
    settings = settings.model_copy(update={"signing_key_path": key})

    async def sign_a_checkpoint() -> None:
        async with running_server(settings) as running:
            target = f"127.0.0.1:{running.port}"
            async with grpc.aio.insecure_channel(target) as channel:
                stub = explain_pb2_grpc.ExplainServiceStub(channel)
                await stub.Explain(explain_request(GBM, denied_applicant))
            await running.records.checkpoint(0)

    asyncio.run(sign_a_checkpoint())
    key.unlink()
    line = failed(
        capsys,
        "serve",
        "--port",
        "0",
        "--model-dir",
        str(settings.model_dir),
        "--archive",
        str(settings.archive_path),
    )
    assert "EXPOUND_SIGNING_KEY_PATH" in line and str(key) in line


def test_relative_paths_are_resolved_against_the_home_not_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.model_dir == default_home() / "artifacts" / "models"
    assert (default_home() / "pyproject.toml").is_file()
    monkeypatch.setenv("EXPOUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EXPOUND_ARCHIVE_PATH", "data/archive.sqlite3")
    monkeypatch.setenv("EXPOUND_MODEL_DIR", "/srv/models")
    settings = Settings()
    assert settings.archive_path == tmp_path / "home" / "data" / "archive.sqlite3"
    assert settings.signing_key_path == tmp_path / "key.pem"
    assert settings.model_dir == Path("/srv/models")


def test_archive_public_key_without_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    line = failed(capsys, "archive", "public-key")
    assert "EXPOUND_SIGNING_KEY_PATH" in line and "key.pem" in line


@pytest.fixture
def corrupt_archive(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "corrupt.sqlite3"
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    yield path


def test_archive_audit_on_a_corrupt_file(
    capsys: pytest.CaptureFixture[str], corrupt_archive: Path
) -> None:
    assert str(corrupt_archive) in failed(
        capsys, "archive", "audit", "--no-signature-check", "--db", str(corrupt_archive)
    )


def test_archive_audit_with_a_bad_checkpoint_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "checkpoint.json"
    bad.write_text("[1]")
    line = failed(
        capsys,
        "archive",
        "audit",
        "--no-signature-check",
        "--db",
        str(tmp_path / "a"),
        "--checkpoint",
        str(bad),
    )
    assert "--checkpoint" in line and str(bad) in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[1, 2]", "got an array"),
        ('{"credit_amount": {"value": 1}}', "'credit_amount' is an object"),
        ('{"credit_amount": [1]}', "'credit_amount' is an array"),
        ("{bad", "not valid JSON"),
        ("7", "got a number"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_explain_with_an_applicant_that_is_not_an_object_of_values(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | bytes, expected: str
) -> None:
    path = tmp_path / "applicant.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    line = failed(
        capsys, "--target", "127.0.0.1:1", "explain", "--model", GBM, "--applicant", str(path)
    )
    assert f"--applicant {path}" in line and expected in line


def test_explain_with_a_missing_applicant_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "none.json"
    line = failed(capsys, "explain", "--model", GBM, "--applicant", str(missing))
    assert f"--applicant {missing}" in line


@pytest.mark.parametrize(
    ("option", "value"),
    [("--seed", "-1"), ("--seed", str(2**64)), ("--candidates", "-3"), ("--seed", "x")],
)
def test_explain_with_an_option_out_of_range(
    capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["explain", "--model", GBM, "--applicant", str(EXAMPLES), option, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}:" in err.splitlines()[-1]


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_records_list_with_a_time_that_is_not_iso_8601(
    capsys: pytest.CaptureFixture[str], option: str
) -> None:
    line = failed(capsys, "--target", "127.0.0.1:1", "records", "list", option, "yesterday")
    assert f"{option}: not an ISO 8601 time: 'yesterday'" in line


@pytest.mark.parametrize("value", ["-3", str(2**32), "ten"])
def test_records_list_with_a_page_size_out_of_range(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    # Refused by the command, before a call: it once went to the wire and came back as
    # protobuf's "Value out of range: -3".
    with pytest.raises(SystemExit) as exited:
        main(["--target", "127.0.0.1:1", "records", "list", "--page-size", value])
    assert exited.value.code == 2
    assert "argument --page-size:" in capsys.readouterr().err.splitlines()[-1]


def test_the_help_reads_as_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["notice", "--help"], ["records", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        shown = capsys.readouterr().out
        assert "``" not in shown, argv
    with pytest.raises(SystemExit):
        main(["records", "--help"])
    listed = capsys.readouterr().out
    assert "one record by id" in listed and "record summaries" in listed


@pytest.mark.parametrize("command", ["explain", "serve"])
def test_every_option_says_what_it_is_for(command: str) -> None:
    subparsers = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    options = [
        action
        for action in subparsers.choices[command]._actions
        if action.option_strings and action.dest != "help"
    ]
    assert options and [a.dest for a in options if not a.help] == []


async def test_a_connection_that_fails_comes_with_what_to_change(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """gRPC's own words ("Socket closed", "WRONG_VERSION_NUMBER") named no option; each
    connection failure now comes with the option to change, over real sockets."""
    from tests.support.security import Pki

    pki, other = Pki(tmp_path / "pki"), Pki(tmp_path / "other")
    tls = settings.model_copy(
        update={"tls_cert_file": pki.server_cert, "tls_key_file": pki.server_key}
    )

    async def hint(*argv: str) -> str:
        capsys.readouterr()
        code = await asyncio.to_thread(main, [*argv, "models", "list"])
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err, err
        (line,) = [line for line in err.splitlines() if line.startswith("  hint: ")]
        return line

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{unused.getsockname()[1]}"
    assert "nothing listens at" in await hint("--target", closed)
    async with running_server(tls) as secured:
        target = f"localhost:{secured.port}"
        assert "--tls-ca" in await hint("--target", target)
        wrong_ca = await hint("--target", target, "--tls-ca", str(other.ca_file))
        assert "not signed by the CA" in wrong_ca
        renamed = await hint(
            "--target", target, "--tls-ca", str(pki.ca_file), "--tls-server-name", "bank.example"
        )
        assert "--tls-server-name" in renamed
    async with running_server(settings) as plain:
        spoken = await hint("--target", f"localhost:{plain.port}", "--tls-ca", str(pki.ca_file))
        assert "does not speak TLS" in spoken
    mtls = tls.model_copy(update={"tls_client_ca_file": pki.ca_file})
    async with running_server(mtls) as secured:
        target, ca = f"localhost:{secured.port}", str(pki.ca_file)
        assert "--cert CERT_FILE --key KEY_FILE" in await hint("--target", target, "--tls-ca", ca)
        cert, key = other.client("stranger")
        stranger = ("--cert", str(cert), "--key", str(key))
        assert "not trust the client" in await hint("--target", target, "--tls-ca", ca, *stranger)
