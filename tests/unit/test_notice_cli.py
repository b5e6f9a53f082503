"""``expound notice`` from the command line: formats, provenance, and clear errors."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pypdf
import pytest
from PIL import Image

from expound.clients.cli import main
from expound.notices import DEFAULT_TEMPLATES
from expound.server.app import RunningServer
from tests.conftest import GBM, ROOT
from tests.support.server_process import free_port
from tests.unit.test_notice import FIXTURES, copied_templates, pdf_text
from tests.unit.test_server import request

CREDITOR = str(FIXTURES / "creditor.toml")
APPLICANT = str(FIXTURES / "applicant.json")


async def cli(argv: list[str]) -> int:
    """Runs the command line off the event loop that serves it."""
    return await asyncio.to_thread(main, argv)


async def test_notice_as_pdf_png_and_html_with_its_provenance(
    service: RunningServer,
    stub: Any,
    denied_applicant: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    response = await stub.Explain(request(GBM, denied_applicant, decision_id="loan-9"))
    record_id = response.record_id
    base = ["--target", f"127.0.0.1:{service.port}", "notice", record_id]
    base += ["--creditor", CREDITOR, "--applicant", APPLICANT, "--date", "2026-11-24"]

    sent = tmp_path / "sent"
    sent.mkdir()
    pdf = sent / "aviso.pdf"
    assert await cli([*base, "--lang", "es", "--out", str(pdf)]) == 0
    provenance = json.loads(capsys.readouterr().out)
    assert provenance["format"] == "pdf" and provenance["language"] == "es"
    assert provenance["record_id"] == record_id and provenance["out"] == str(pdf)
    assert provenance["notice_date"] == "2026-11-24"
    assert provenance["sha256"] == hashlib.sha256(pdf.read_bytes()).hexdigest()
    text = pdf_text(pdf.read_bytes())
    assert "Aviso de la decisión tomada" in text and "24 de noviembre de 2026" in text
    assert provenance["template_sha256"] in "".join(text.split())
    info = pypdf.PdfReader(pdf).metadata
    assert info is not None and info["/expoundtemplatesha256"] == provenance["template_sha256"]

    png = sent / "notice.png"
    assert await cli([*base, "--out", str(png)]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "png"
    assert Image.open(io.BytesIO(png.read_bytes())).format == "PNG"
    # Written whole, through a partial file that is gone.
    assert sorted(path.name for path in sent.iterdir()) == ["aviso.pdf", "notice.png"]

    # The HTML on stdout, its provenance on stderr; records notice is the same command.
    argv = ["--target", f"127.0.0.1:{service.port}", "records", *base[2:]]
    assert await cli(argv) == 0
    out, err = capsys.readouterr()
    assert out.startswith("<!DOCTYPE html>") and "Notice of Action Taken" in out
    assert json.loads(err)["format"] == "html"


def bad_templates(tmp_path: Path) -> Path:
    folder = copied_templates(tmp_path)
    page = folder / "es" / "notice.html"
    page.write_text(page.read_text().replace("{% endif %}", "{% endfi %}", 1))
    return page


def missing_agency(tmp_path: Path) -> Path:
    path = tmp_path / "creditor.toml"
    text = (FIXTURES / "creditor.toml").read_text()
    path.write_text(text.replace("[ecoa_agency]", "[agency]"))
    return path


def not_toml(tmp_path: Path) -> Path:
    path = tmp_path / "creditor.toml"
    path.write_text('name = "Bank\n')
    return path


def bad_applicant(tmp_path: Path) -> Path:
    path = tmp_path / "applicant.json"
    path.write_text('{"name": "A"}')
    return path


# (what is wrong, the options that say it, the file the message must name, what it says)
BAD_INPUTS = {
    "no profile": (
        lambda tmp: ["--creditor", str(tmp / "absent.toml")],
        lambda tmp: tmp / "absent.toml",
        "No such file",
    ),
    "profile not TOML": (
        lambda tmp: ["--creditor", str(not_toml(tmp))],
        lambda tmp: tmp / "creditor.toml",
        "not valid TOML",
    ),
    "profile without an agency": (
        lambda tmp: ["--creditor", str(missing_agency(tmp))],
        lambda tmp: tmp / "creditor.toml",
        "ecoa_agency",
    ),
    "template folder absent": (
        lambda tmp: ["--templates", str(tmp / "nowhere")],
        lambda tmp: tmp / "nowhere",
        "not a folder",
    ),
    "template syntax error": (
        lambda tmp: ["--templates", str(bad_templates(tmp).parent.parent)],
        lambda tmp: tmp / "templates" / "es" / "notice.html",
        "line",
    ),
    "language not in the set": (
        lambda tmp: ["--lang", "fr"],
        lambda tmp: Path("templates/default"),
        "no language 'fr'",
    ),
    "applicant without an address": (
        lambda tmp: ["--applicant", str(bad_applicant(tmp))],
        lambda tmp: tmp / "applicant.json",
        "address",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_are_errors_naming_the_file_before_any_record_is_read(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options, named, said = BAD_INPUTS[case]
    argv = ["--creditor", CREDITOR, "--applicant", APPLICANT, *options(tmp_path)]
    # No server listens there: reading the record first would fail with UNAVAILABLE (1).
    target = ["--target", f"127.0.0.1:{free_port()}", "--timeout", "2"]
    assert main([*target, "notice", "some-record", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert str(named(tmp_path)) in err and said in err
    assert "Traceback" not in err


def test_a_creditor_is_required(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EXPOUND_NOTICE_CREDITOR", raising=False)
    target = ["--target", f"127.0.0.1:{free_port()}"]
    assert main([*target, "notice", "r", "--applicant", APPLICANT]) == 2
    assert "--creditor" in capsys.readouterr().err
    # The setting stands in for the option; its template folder too.
    folder = tmp_path / "set"
    shutil.copytree(DEFAULT_TEMPLATES, folder)
    (folder / "notice.toml").write_text('id = "x"\nlanguages = []\n')
    monkeypatch.setenv("EXPOUND_NOTICE_CREDITOR", CREDITOR)
    monkeypatch.setenv("EXPOUND_NOTICE_TEMPLATES", str(folder))
    assert main([*target, "notice", "r", "--applicant", APPLICANT]) == 2
    assert f"{folder / 'notice.toml'}: languages" in capsys.readouterr().err


def test_a_bad_template_is_one_line_on_stderr_from_the_real_command(tmp_path: Path) -> None:
    page = bad_templates(tmp_path)
    argv = ["--target", f"127.0.0.1:{free_port()}", "notice", "some-record"]
    argv += [
        "--creditor",
        CREDITOR,
        "--applicant",
        APPLICANT,
        "--templates",
        str(page.parent.parent),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "expound.clients.cli", *argv],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = page.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, start=1) if "{% endfi %}" in text)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: template {page}, line {line}: Encountered unknown tag 'endfi'. Jinja was looking "
        "for the following tags: 'endif'. The innermost block that needs to be closed is "
        "'if'.\n"
    )
