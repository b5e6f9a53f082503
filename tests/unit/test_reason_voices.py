"""Principal reasons in both voices in answers and records: the applicant's ``text`` and the
third person's ``neutral_text``, over a real gRPC socket, over the HTTP face (against its own
OpenAPI document) and on the record page; and a record written before ``neutral_text`` was
kept (schema ``expound.record/v3``) still reads, replays, audits and shows."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import grpc
import httpx
import jsonschema
from markupsafe import escape

from expound.archive.factory import open_archive
from expound.archive.records import NewRecord
from expound.models.manifest import SECOND_PERSON
from expound.pipeline.record import RECORD_SCHEMA
from expound.server.app import running_server
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from tests.conftest import GBM
from tests.support.security import ROLES, write_policy, write_tokens
from tests.support.server_process import free_port
from tests.unit.test_archive_admin import audit_archive
from tests.unit.test_server import request
from tests.unit.test_web_api import Web, web  # noqa: F401  (the HTTP face fixture)

OLD_SCHEMA = "expound.record/v3"
BAR_LABEL = re.compile(r'<text x="0" y="\d+" class="label">([^<]*)</text>')
REASON_LABEL = re.compile(r"^[A-Z0-9]{2,8}: ")
REASON_COUNT = re.compile(
    r'class="label">([A-Z0-9]{2,8}: [^<]*)</text>.*?class="value"[^>]*>([^<]*)</text>', re.S
)


async def reason_table(stub: Any, model_id: str) -> dict[str, pb.ReasonCode]:
    """The model's reason table as GetModel gives it, by code."""
    info = await stub.GetModel(pb.GetModelRequest(model_id=model_id))
    return {r.code: r for r in info.reasons}


def spoken_to_applicant(reasons: Any) -> list[Any]:
    """The reasons whose applicant wording says "you" or "your"."""
    return [r for r in reasons if SECOND_PERSON.search(r.text)]


async def test_an_answer_and_its_record_carry_each_reasons_third_person_wording(
    stub: Any, denied_applicant: dict[str, Any]
) -> None:
    table = await reason_table(stub, GBM)
    answer = await stub.Explain(request(GBM, denied_applicant, audience=pb.COMPLIANCE))
    # The decision has a reason worded to the applicant, or this checks nothing.
    assert spoken_to_applicant(answer.principal_reasons)
    for reason in answer.principal_reasons:
        assert reason.text == table[reason.code].text
        assert reason.neutral_text == table[reason.code].neutral_text
        assert SECOND_PERSON.search(reason.neutral_text) is None, reason
    # The compliance text quotes the third-person wording, never the applicant's.
    for reason in answer.principal_reasons:
        assert reason.neutral_text in answer.selected.text
    for reason in spoken_to_applicant(answer.principal_reasons):
        assert reason.text not in answer.selected.text

    record = await stub.GetRecord(pb.GetRecordRequest(record_id=answer.record_id))
    assert list(record.response.principal_reasons) == list(answer.principal_reasons)
    body = json.loads(record.canonical_json)
    assert body["schema"] == RECORD_SCHEMA == "expound.record/v4"
    archived = body["response"]["principal_reasons"]
    assert [(r["code"], r["text"], r["neutral_text"]) for r in archived] == [
        (r.code, r.text, r.neutral_text) for r in answer.principal_reasons
    ]


def _explain_answer_schema(document: dict[str, Any]) -> dict[str, Any]:
    content = document["paths"]["/v1/explain"]["post"]["responses"]["200"]["content"]
    schema: dict[str, Any] = content["application/json"]["schema"]
    return {**schema, "components": document["components"]}


async def test_http_answer_and_record_page_give_the_third_person_wording(
    web: Web,  # noqa: F811
    denied_applicant: dict[str, Any],
) -> None:
    async with web.client("decider") as decider:
        answer = await decider.post(
            "/v1/explain",
            json={"model_id": GBM, "features": denied_applicant, "audience": "ANALYST"},
        )
    assert answer.status_code == 200, answer.text
    async with web.client("auditor") as auditor:
        document = (await auditor.get("/openapi.json")).json()
        page = await auditor.get(f"/ui/records/{answer.json()['record_id']}")
    body = answer.json()
    validator = jsonschema.Draft202012Validator(_explain_answer_schema(document))
    validator.validate(body)
    described = document["components"]["schemas"]["PrincipalReason"]["properties"]
    assert "third person" in described["neutral_text"]["description"]
    reasons = body["principal_reasons"]
    spoken = [r for r in reasons if SECOND_PERSON.search(r["text"])]
    assert spoken and all(r["neutral_text"] != r["text"] for r in spoken)
    assert all(r["neutral_text"] and not SECOND_PERSON.search(r["neutral_text"]) for r in reasons)
    # A reason whose third-person wording is not text fails the document: the check can fail.
    broken = {**reasons[0], "neutral_text": 7}
    assert not validator.is_valid({**body, "principal_reasons": [broken]})

    # The record page reads in the third person, with the applicant's wording beside it.
    assert page.status_code == 200, page.text
    for reason in reasons:
        assert f'<span class="reason">{escape(reason["neutral_text"])}</span>' in page.text
    for reason in spoken:
        assert f"to the applicant: {escape(reason['text'])}" in page.text
        assert f'<span class="reason">{escape(reason["text"])}</span>' not in page.text


async def _v3_record_body(settings: Settings, features: dict[str, Any], principal: str) -> Any:
    """A record as schema v3 wrote it (reasons with ``text`` only), made by a real Explain
    on a scratch archive and rewritten the old way."""
    scratch = settings.model_copy(update={"archive_path": settings.archive_path.with_name("v3")})
    async with (
        running_server(scratch) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        answer = await stub.Explain(
            request(GBM, features, decision_id="loan-v3", idempotency_key="key-v3")
        )
        record = await stub.GetRecord(pb.GetRecordRequest(record_id=answer.record_id))
    body = json.loads(record.canonical_json)
    body["schema"] = OLD_SCHEMA
    body["principal"] = principal
    for reason in body["response"]["principal_reasons"]:
        del reason["neutral_text"]
    return body


async def test_a_record_written_before_neutral_text_reads_replays_audits_and_shows(
    settings: Settings, denied_applicant: dict[str, Any], tmp_path: Path
) -> None:
    old = await _v3_record_body(settings, denied_applicant, principal="decider")
    old_reasons = old["response"]["principal_reasons"]
    assert any(SECOND_PERSON.search(r["text"]) for r in old_reasons)
    archive = await open_archive(settings)
    try:
        stored = await archive.append(NewRecord.from_body(old))
    finally:
        await archive.aclose()

    tokens = write_tokens(tmp_path / "tokens", list(ROLES))
    policy = write_policy(tmp_path / "policy.toml", {role: [role] for role in ROLES})
    served = settings.model_copy(
        update={"tokens_file": tmp_path / "tokens", "policy_file": policy, "http_port": free_port()}
    )

    def as_(role: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {tokens[role]}"),)

    async with running_server(served) as running:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = explain_pb2_grpc.ExplainServiceStub(channel)
            read = await stub.GetRecord(
                pb.GetRecordRequest(record_id=stored.record_id), metadata=as_("auditor")
            )
            # The same request under the same key replays the old record as it was.
            replayed = await stub.Explain(
                request(GBM, denied_applicant, decision_id="loan-v3", idempotency_key="key-v3"),
                metadata=as_("decider"),
            )
            fresh = await stub.Explain(
                request(GBM, denied_applicant, decision_id="loan-v4"), metadata=as_("decider")
            )
        headers = {"authorization": f"Bearer {tokens['auditor']}"}
        base = f"http://127.0.0.1:{running.http_port}"
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as browser:
            page = await browser.get(f"/ui/records/{stored.record_id}")
            model_page = await browser.get(f"/ui/models/{GBM}")

    # Read back byte for byte, its reasons with text only.
    assert read.canonical_json.encode() == stored.canonical
    assert json.loads(read.canonical_json)["schema"] == OLD_SCHEMA
    expected = [(r["code"], r["text"], "") for r in old_reasons]
    assert [(r.code, r.text, r.neutral_text) for r in read.response.principal_reasons] == expected
    assert replayed.record_id == stored.record_id
    assert [(r.code, r.text, r.neutral_text) for r in replayed.principal_reasons] == expected
    # A new decision beside it carries both wordings.
    assert all(r.neutral_text for r in fresh.principal_reasons)
    assert [r.code for r in fresh.principal_reasons] == [r["code"] for r in old_reasons]

    # The page shows what the record holds, and says it predates the third-person wording.
    assert page.status_code == 200, page.text
    for reason in old_reasons:
        assert f'<span class="reason">{escape(reason["text"])}</span>' in page.text
    assert page.text.count("the record predates the third-person wording") == len(old_reasons)
    # The model page counts both records under one bar per code, in the third person (a
    # long label is cut short at a word, with "...").
    assert model_page.status_code == 200, model_page.text
    labels = [html.unescape(label) for label in BAR_LABEL.findall(model_page.text)]
    by_code = {label.split(":")[0]: label for label in labels if REASON_LABEL.match(label)}
    assert len(by_code) == len([label for label in labels if REASON_LABEL.match(label)])
    assert sorted(by_code) == sorted(r.code for r in fresh.principal_reasons)
    for reason in fresh.principal_reasons:
        shown = by_code[reason.code].removesuffix("...")
        assert f"{reason.code}: {reason.neutral_text}".startswith(shown), shown
    # Each bar counts the two records that gave its reason: a whole number.
    counted = {html.unescape(k): v for k, v in REASON_COUNT.findall(model_page.text)}
    assert {label.split(":")[0]: counted[label] for label in by_code.values()} == {
        r.code: "2" for r in fresh.principal_reasons
    }

    # The whole log, the v3 record and the v4 one, still audits.
    report = await audit_archive(settings)
    assert report.ok, report.problem
    assert report.size == 2
