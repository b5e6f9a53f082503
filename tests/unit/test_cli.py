"""The ``expound`` command against a real server.

The CLI uses a synchronous channel, so it runs in a worker thread while the server answers
in the test's event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from expound.clients.cli import main
from expound.models.manifest import SECOND_PERSON
from expound.server.app import RunningServer
from expound.times import parse_utc
from tests.conftest import EXAMPLES, GBM, LOGISTIC

DENIED = str(EXAMPLES / "applicant_denied.json")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def expound(
    service: RunningServer, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    """Runs ``expound --target SERVER ARGV...``; returns exit code, stdout, stderr."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["--target", f"127.0.0.1:{service.port}", *argv])
    out, err = capsys.readouterr()
    return code, out, err


async def explained(service: RunningServer, capsys: Any, model_id: str = GBM) -> dict[str, Any]:
    code, out, _ = await expound(
        service, capsys, "explain", "--model", model_id, "--applicant", DENIED, "--json"
    )
    assert code == 0
    return dict(json.loads(out))


async def test_explain_prints_decision_attributions_reasons_and_record(
    service: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await expound(
        service, capsys, "explain", "--model", GBM, "--applicant", DENIED
    )
    assert (code, err) == (0, "")
    assert re.search(r"^decision: decline  \(score 0\.\d{3} = probability", out, re.M)
    attributions = re.findall(r"^\s+(\d+)\. (\w+)\s+\S+\s+([+-]\d+\.\d{3})$", out, re.M)
    assert [int(rank) for rank, _, _ in attributions] == [1, 2, 3, 4, 5, 6]
    magnitudes = [abs(float(value)) for _, _, value in attributions]
    assert magnitudes == sorted(magnitudes, reverse=True)
    reasons = re.findall(r"^\s+(\d)\. \[([A-Z0-9]+)\] .+$", out, re.M)
    assert 1 <= len(reasons) <= 4 and [int(rank) for rank, _ in reasons] == list(
        range(1, len(reasons) + 1)
    )
    assert "\nexplanation:\n  Your application was declined." in out
    assert re.search(rf"^record id: {UUID}$", out, re.M)


async def test_a_what_if_says_it_was_not_archived(
    service: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await expound(
        service, capsys, "explain", "--model", GBM, "--applicant", DENIED, "--what-if"
    )
    assert (code, err) == (0, "")
    assert out.rstrip().endswith("record id: (none: a what-if, not archived)")


async def test_explain_prints_each_reason_in_the_third_person(
    service: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    reasons = (await explained(service, capsys))["principal_reasons"]
    # A reason worded to the applicant is among them, or this checks nothing.
    assert any(SECOND_PERSON.search(r["text"]) for r in reasons)
    code, out, _ = await expound(service, capsys, "explain", "--model", GBM, "--applicant", DENIED)
    assert code == 0
    printed = re.findall(r"^\s+\d\. \[([A-Z0-9]+)\] (.+)$", out, re.M)
    assert printed == [(r["code"], r["neutral_text"]) for r in reasons]
    assert not any(SECOND_PERSON.search(text) for _, text in printed)


async def test_explain_json_is_the_full_response(
    service: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    response = await explained(service, capsys)
    assert response["model_id"] == GBM and re.fullmatch(UUID, response["record_id"])
    assert response["prediction"]["decision"] == "decline"
    items = response["attributions"]["items"]
    assert len(items) == 18 and items[0]["rank"] == 1
    assert response["principal_reasons"][0]["code"]
    assert response["selected"]["text"].startswith("Your application was declined.")
    assert {t["stage"] for t in response["timings"]} >= {"attribute", "archive"}


async def test_models_list_and_show(
    service: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await expound(service, capsys, "models", "list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [GBM, LOGISTIC]
    assert "treeshap-path-dependent" in lines[0] and "linear-shap-interventional" in lines[1]

    code, out, _ = await expound(service, capsys, "models", "show", LOGISTIC)
    assert code == 0
    assert out.startswith(f"{LOGISTIC} 1.0.0: German credit, logistic regression\n")
    assert re.search(r"artifact sha256 [0-9a-f]{64}$", out, re.M)
    assert re.search(r"^  age_years .*\[18\.\.100\] years protected$", out, re.M)
    assert re.search(r"^  checking_account .*\[overdrawn, below_200_dm, ", out, re.M)
    # Each banded code and category with the words explanations use for it.
    assert re.search(r"^ +1 = 35% or more$", out, re.M)
    assert re.search(r"^ +radio_tv = a radio or television$", out, re.M)
    assert (
        "  reason CHK01: Status or balance of your checking account (third person: Status or "
        "balance of the applicant's checking account) [checking_account]\n" in out
    )


async def test_records_get_prints_the_canonical_record(
    service: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    record_id = (await explained(service, capsys))["record_id"]
    code, out, _ = await expound(service, capsys, "records", "get", record_id)
    assert code == 0
    canonical = out.removesuffix("\n")
    code, out, _ = await expound(service, capsys, "records", "get", record_id, "--json")
    assert code == 0
    record = json.loads(out)
    assert hashlib.sha256(canonical.encode()).hexdigest() == record["sha256"]
    assert json.loads(canonical)["record_id"] == record_id


async def test_records_list_filters_by_model_and_time(
    service: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = [await explained(service, capsys, GBM) for _ in range(2)]
    gbm = [answer["record_id"] for answer in answers]
    logistic = (await explained(service, capsys, LOGISTIC))["record_id"]

    since = "2000-01-01T00:00:00"
    code, out, _ = await expound(
        service, capsys, "records", "list", "--model", GBM, "--since", since
    )
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines()]
    assert listed == gbm[::-1], "newest first, only the requested model"
    assert logistic not in out and all(GBM in line for line in out.splitlines())
    # Each line's time is the record's, in RFC 3339 UTC as everywhere else ("Z").
    times = [line.split()[1] for line in out.splitlines()]
    assert all(time.endswith("Z") for time in times)
    assert [parse_utc(time) for time in times] == [
        parse_utc(answer["created_at"]) for answer in answers[::-1]
    ]

    code, out, _ = await expound(
        service, capsys, "records", "list", "--model", GBM, "--since", "2999-01-01T00:00:00"
    )
    assert (code, out) == (0, "")


@pytest.fixture
def bad_applicant(denied_applicant: dict[str, Any], tmp_path: Path) -> Path:
    """The denied applicant with a missing, an ill-typed and an out-of-range feature."""
    applicant = dict(denied_applicant, credit_amount="lots", duration_months=500)
    del applicant["savings"]
    path = tmp_path / "applicant.json"
    path.write_text(json.dumps(applicant))
    return path


async def test_a_bad_request_names_the_offending_fields(
    service: RunningServer, capsys: pytest.CaptureFixture[str], bad_applicant: Path
) -> None:
    code, out, err = await expound(
        service, capsys, "explain", "--model", GBM, "--applicant", str(bad_applicant)
    )
    assert code != 0 and out == ""
    assert err.startswith("error: INVALID_ARGUMENT: ")
    assert re.search(r"^  features\[savings\]: required feature is missing$", err, re.M)
    assert re.search(r"^  features\[credit_amount\]: must be a number", err, re.M)
    assert re.search(r"^  features\[duration_months\]: must be at most 120$", err, re.M)


async def test_an_unknown_model_exits_non_zero(
    service: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await expound(
        service, capsys, "explain", "--model", "no-such-model", "--applicant", DENIED
    )
    assert code != 0 and out == ""
    assert err.startswith("error: NOT_FOUND: unknown model 'no-such-model'")
