"""The HTTP/JSON face over a real TLS socket: the same roles, records and errors as gRPC.

The server runs TLS (certificates made here) with static tokens, one principal per role, on
the shipped default policy, and serves HTTP beside gRPC from the same process.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import ssl
import statistics
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from expound.errors import StatusCode
from expound.observability.logs import ACCESS_LOGGER
from expound.server.app import RunningServer, StartupError, running_server
from expound.server.policy import RPCS
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from expound.web.errors import HTTP_STATUS
from tests.conftest import GBM
from tests.support.security import ROLES, Pki, spiffe_id, write_policy, write_tokens
from tests.support.server_process import free_port
from tests.unit.test_access import ALLOWED

ERROR_FIELDS = {"code", "message", "field_violations", "request_id", "retry_after_s"}


@dataclasses.dataclass
class Web:
    running: RunningServer
    pki: Pki
    tokens: dict[str, str]
    base: str

    def client(self, role: str | None = None) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.AsyncClient(
            base_url=self.base,
            verify=ssl.create_default_context(cafile=self.pki.ca_file),
            headers=headers,
            timeout=30,
        )


@pytest.fixture
async def web(settings: Settings, tmp_path: Path) -> AsyncIterator[Web]:
    pki = Pki(tmp_path / "pki")
    tokens = write_tokens(tmp_path / "tokens", [*ROLES, "nobody"])
    policy = write_policy(tmp_path / "policy.toml", {role: [role] for role in ROLES})
    secured = settings.model_copy(
        update={
            "tls_cert_file": pki.server_cert,
            "tls_key_file": pki.server_key,
            "tokens_file": tmp_path / "tokens",
            "policy_file": policy,
            "http_port": free_port(),
        }
    )
    async with running_server(secured) as running:
        yield Web(running, pki, tokens, f"https://localhost:{running.http_port}")


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == ERROR_FIELDS
    assert body["code"] == code
    assert body["request_id"] == answer.headers["x-request-id"]
    assert "Traceback" not in answer.text
    return dict(body)


async def test_explain_is_archived_and_read_back_with_its_proof_as_over_grpc(
    web: Web, denied_applicant: dict[str, Any]
) -> None:
    async with web.client("decider") as decider:
        answer = await decider.post(
            "/v1/explain",
            json={"model_id": GBM, "features": denied_applicant, "decision_id": "loan-7"},
            headers={"x-request-id": "web-req-1"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-request-id"] == "web-req-1"
    explained = answer.json()
    assert explained["archived"] is True and explained["record_id"]
    assert explained["prediction"]["adverse"] is True
    async with web.client("auditor") as auditor:
        record = (
            await auditor.get(f"/v1/records/{explained['record_id']}?include_proof=true")
        ).json()
        log = (await auditor.get("/v1/access-log")).json()
    assert record["decision_id"] == "loan-7" and record["principal"] == "decider"
    assert record["proof"]["checkpoint"]["size"] >= record["seq"] + 1
    # The same record over gRPC: one archive behind both faces.
    pki, token = web.pki, web.tokens["auditor"]
    target = f"localhost:{web.running.port}"
    async with grpc.aio.secure_channel(target, pki.channel_credentials()) as channel:
        stub = explain_pb2_grpc.ExplainServiceStub(channel)
        over_grpc = await stub.GetRecord(
            pb.GetRecordRequest(record_id=explained["record_id"]),
            metadata=(("authorization", f"Bearer {token}"),),
        )
    assert over_grpc.canonical_json == record["canonical_json"]
    reads = [e for e in log["entries"] if e["rpc"] == "GetRecord"]
    assert [(e["principal"], e["record_ids"]) for e in reads] == [
        ("auditor", [explained["record_id"]])
    ]


async def test_a_role_the_policy_does_not_grant_gets_403_and_no_credential_401(
    web: Web,
) -> None:
    async with web.client("decider") as decider:
        denied = await decider.get("/v1/access-log")
    assert_error(denied, 403, "PERMISSION_DENIED")
    async with web.client("nobody") as nobody:
        assert_error(await nobody.get("/v1/models"), 403, "PERMISSION_DENIED")
    async with web.client() as anonymous:
        refused = await anonymous.get("/v1/models")
    assert_error(refused, 401, "UNAUTHENTICATED")
    assert refused.headers["www-authenticate"] == "Bearer"
    async with web.client("operator") as operator:
        models = (await operator.get("/v1/models")).json()["models"]
    assert GBM in {m["model_id"] for m in models}


async def test_what_if_is_for_analysts_and_is_not_archived(
    web: Web, denied_applicant: dict[str, Any]
) -> None:
    body = {"model_id": GBM, "features": denied_applicant, "what_if": True}
    async with web.client("decider") as decider:
        assert_error(await decider.post("/v1/explain", json=body), 403, "PERMISSION_DENIED")
    async with web.client("analyst") as analyst:
        answer = await analyst.post("/v1/explain", json=body)
        listed = (await analyst.get("/v1/records")).json()
    assert answer.status_code == 200, answer.text
    assert (answer.json()["archived"], answer.json()["record_id"]) == (False, "")
    assert listed["records"] == []


async def test_bad_input_gets_400_with_field_violations_never_a_traceback(
    web: Web, denied_applicant: dict[str, Any]
) -> None:
    async with web.client("decider") as decider:
        wrong_type = await decider.post(
            "/v1/explain", json={"model_id": GBM, "features": "age=30", "seed": -1}
        )
        not_json = await decider.post(
            "/v1/explain", content=b"{", headers={"content-type": "application/json"}
        )
        unknown_model = await decider.post(
            "/v1/explain", json={"model_id": "no-such-model", "features": denied_applicant}
        )
        bad_value = await decider.post(
            "/v1/explain",
            json={"model_id": GBM, "features": {**denied_applicant, "age": "old"}},
        )
    body = assert_error(wrong_type, 400, "INVALID_ARGUMENT")
    assert {v["field"] for v in body["field_violations"]} == {"features", "seed"}
    assert_error(not_json, 400, "INVALID_ARGUMENT")
    assert_error(unknown_model, 404, "NOT_FOUND")
    invalid = assert_error(bad_value, 400, "INVALID_ARGUMENT")
    assert any("age" in v["field"] for v in invalid["field_violations"])
    async with web.client("auditor") as auditor:
        assert_error(await auditor.get("/v1/records/nope"), 404, "NOT_FOUND")
        assert_error(await auditor.get("/v1/records?page_token=x%C2%B2"), 400, "INVALID_ARGUMENT")


async def test_the_openapi_document_lists_every_status_an_endpoint_answers(web: Web) -> None:
    async with web.client() as anonymous:
        document = (await anonymous.get("/openapi.json")).json()
    explain = document["paths"]["/v1/explain"]["post"]["responses"]
    assert set(explain) == {"200", "400", "401", "403", "404", "409", "429", "500", "503"}
    error = explain["403"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ErrorBody")
    for path in document["paths"].values():
        for operation in path.values():
            assert "422" not in operation["responses"]


async def test_the_login_cookie_is_http_only_strict_and_cross_site_forms_are_refused(
    web: Web,
) -> None:
    async with web.client() as browser:
        foreign = await browser.post(
            "/ui/login",
            content=f"token={web.tokens['auditor']}",
            headers={
                "origin": "https://evil.example",
                "content-type": "application/x-www-form-urlencoded",
            },
        )
        assert foreign.status_code == 403 and "expound_session" not in foreign.headers.get(
            "set-cookie", ""
        )
        own = await browser.post(
            "/ui/login",
            content=f"token={web.tokens['auditor']}&next=//evil.example/",
            headers={"origin": web.base, "content-type": "application/x-www-form-urlencoded"},
        )
        assert own.status_code == 303 and own.headers["location"] == "/ui/records"
        cookie = own.headers["set-cookie"].lower()
        for attribute in ("httponly", "samesite=strict", "secure", "path=/ui"):
            assert attribute in cookie
        # The cookie opens the pages, never the JSON API.
        page = await browser.get("/ui/records")
        assert page.status_code == 200
        assert 'action="/ui/logout"' in page.text  # a session, to end
        assert "script-src 'self';" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert_error(await browser.get("/v1/records"), 401, "UNAUTHENTICATED")


async def test_with_a_client_ca_the_http_port_requires_a_client_certificate(
    settings: Settings, tmp_path: Path
) -> None:
    pki = Pki(tmp_path / "pki")
    tokens = write_tokens(tmp_path / "tokens", ["auditor"])
    policy = write_policy(tmp_path / "policy.toml", {"auditor": ["auditor"]})
    mtls = settings.model_copy(
        update={
            "tls_cert_file": pki.server_cert,
            "tls_key_file": pki.server_key,
            "tls_client_ca_file": pki.ca_file,
            "tokens_file": tmp_path / "tokens",
            "policy_file": policy,
            "http_port": free_port(),
        }
    )
    headers = {"authorization": f"Bearer {tokens['auditor']}"}
    async with running_server(mtls) as running:
        base = f"https://localhost:{running.http_port}"
        without = ssl.create_default_context(cafile=pki.ca_file)
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            async with httpx.AsyncClient(verify=without, timeout=10) as client:
                await client.get(f"{base}/v1/models", headers=headers)
        with_cert = ssl.create_default_context(cafile=pki.ca_file)
        cert, key = pki.client("auditor")
        with_cert.load_cert_chain(cert, key)
        async with httpx.AsyncClient(verify=with_cert, timeout=10) as client:
            answer = await client.get(f"{base}/v1/models", headers=headers)
    assert answer.status_code == 200, answer.text


async def test_a_client_certificate_names_the_principal_over_http_as_over_grpc(
    settings: Settings, tmp_path: Path
) -> None:
    """mTLS alone (no tokens): the JSON API and the pages know the caller by its
    certificate, as the gRPC port does; a bearer header still wins over it."""
    pki = Pki(tmp_path / "pki")
    auditor, decider = spiffe_id("auditor-1"), spiffe_id("loan-app")
    policy = write_policy(tmp_path / "policy.toml", {auditor: ["auditor"], decider: ["decider"]})
    mtls = settings.model_copy(
        update={
            "tls_cert_file": pki.server_cert,
            "tls_key_file": pki.server_key,
            "tls_client_ca_file": pki.ca_file,
            "policy_file": policy,
            "http_port": free_port(),
        }
    )

    def client(principal: str) -> httpx.AsyncClient:
        context = ssl.create_default_context(cafile=pki.ca_file)
        context.load_cert_chain(*pki.client(principal))
        base = f"https://localhost:{running.http_port}"
        return httpx.AsyncClient(base_url=base, verify=context, timeout=30)

    async with (
        running_server(mtls) as running,
        client("auditor-1") as as_auditor,
        client("loan-app") as as_decider,
    ):
        models = await as_auditor.get("/v1/models")
        records = await as_auditor.get("/v1/records")
        page = await as_auditor.get("/ui/records")
        refused = await as_decider.get("/v1/records")
        forged = await as_auditor.get(
            "/v1/models", headers={"authorization": "Bearer exp_not-a-token"}
        )
    assert models.status_code == 200, models.text
    assert records.status_code == 200, records.text
    assert page.status_code == 200 and "<form" in page.text, page.text[:300]
    # No session to end: the page names the certificate's principal, with no log-out form.
    assert f"signed in as <b>{auditor}</b> (client certificate)" in page.text
    assert 'action="/ui/logout"' not in page.text
    assert_error(refused, 403, "PERMISSION_DENIED")
    assert_error(forged, 401, "UNAUTHENTICATED")


async def test_an_unexpected_failure_is_500_with_the_request_id_and_no_traceback(
    web: Web, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> list[Any]:
        raise RuntimeError("secret detail /etc/expound")

    monkeypatch.setattr(web.running.registry, "all", broken)
    with caplog.at_level(logging.INFO):
        async with web.client("operator") as operator:
            answer = await operator.get("/v1/models", headers={"x-request-id": "boom-1"})
    body = assert_error(answer, 500, "INTERNAL")
    assert body["message"] == "internal error (request id boom-1)"
    assert "secret detail" not in answer.text
    # Logged here with its cause, and reported as the gRPC guard reports a call.
    assert any(r.exc_info and "boom-1" in r.getMessage() for r in caplog.records)
    calls = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [(r.__dict__["rpc"], r.__dict__["code"]) for r in calls] == [("ListModels", "INTERNAL")]


async def test_every_call_is_reported_under_the_rpc_it_mirrors_with_its_code(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with web.client("decider") as decider:
            await decider.get("/v1/models")
            await decider.get("/v1/records/x")
        async with web.client("auditor") as auditor:
            await auditor.get("/v1/records/x")
            await auditor.get(f"/v1/models/{GBM}")
    calls = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [(r.__dict__["rpc"], r.__dict__["code"]) for r in calls] == [
        ("ListModels", "PERMISSION_DENIED"),
        ("GetRecord", "PERMISSION_DENIED"),
        ("GetRecord", "NOT_FOUND"),
        ("GetModel", "OK"),
    ]


async def test_a_busy_http_port_is_a_startup_error_naming_the_setting(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = settings.model_copy(update={"http_port": taken.getsockname()[1]})
        with pytest.raises(StartupError, match="EXPOUND_HTTP_PORT"):
            async with running_server(busy):
                pass


async def test_small_answers_are_not_held_back_by_nagle_and_delayed_acks(web: Web) -> None:
    # Without TCP_NODELAY on the listening socket every answer waited ~40 ms for the
    # client's delayed ACK (44 ms median measured); a served GET takes a few ms.
    async with web.client("operator") as operator:
        await operator.get("/v1/models")
        took = []
        for _ in range(15):
            started = time.perf_counter()
            assert (await operator.get("/v1/models")).status_code == 200
            took.append(time.perf_counter() - started)
    assert statistics.median(took) < 0.035, took


# One request per RPC the JSON API mirrors (mostly invalid or unknown ids: what matters is
# whether the role check lets it through).
ENDPOINTS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "Explain": ("POST", "/v1/explain", {"model_id": "", "features": {}}),
    "GetRecord": ("GET", "/v1/records/unknown", None),
    "ListRecords": ("GET", "/v1/records", None),
    "GetConsistencyProof": ("GET", "/v1/consistency-proof", None),
    "GetCheckpoint": ("GET", "/v1/checkpoint", None),
    "ListModels": ("GET", "/v1/models", None),
    "GetModel": ("GET", f"/v1/models/{GBM}", None),
    "ReloadModels": ("POST", "/v1/models/reload", None),
    "PlaceHold": ("POST", "/v1/records/unknown/hold", {"reason": "matter 7"}),
    "ReleaseHold": ("POST", "/v1/records/unknown/release", {"reason": "matter 7"}),
    "ExpireRecords": ("POST", "/v1/expiry", {"record_ids": ["unknown"]}),
    "GetRecordHistory": ("GET", "/v1/records/unknown/history", None),
    "ListAccessLog": ("GET", "/v1/access-log", None),
}


def test_every_status_code_has_its_http_status_and_every_rpc_but_the_stream_an_endpoint() -> None:
    assert set(HTTP_STATUS) == set(StatusCode)
    assert set(ENDPOINTS) == RPCS - {"ExplainBatch"}


async def test_every_role_against_every_endpoint_as_over_grpc(web: Web) -> None:
    for rpc, (method, path, body) in ENDPOINTS.items():
        for caller in (*ROLES, "nobody", None):
            async with web.client(caller) as client:
                answer = await client.request(method, path, json=body)
            if caller is None:
                assert_error(answer, 401, "UNAUTHENTICATED")
            elif caller in ALLOWED[rpc]:
                assert answer.status_code not in (401, 403), (rpc, caller, answer.text)
            else:
                refused = assert_error(answer, 403, "PERMISSION_DENIED")
                assert refused["message"] == "permission denied", (rpc, caller)


async def test_an_analyst_reads_only_the_records_it_made(
    web: Web, denied_applicant: dict[str, Any]
) -> None:
    body = {"model_id": GBM, "features": denied_applicant}
    async with web.client("decider") as decider:
        theirs = (await decider.post("/v1/explain", json=body)).json()["record_id"]
    async with web.client("analyst") as analyst:
        mine = (await analyst.post("/v1/explain", json=body)).json()["record_id"]
        listed = (await analyst.get("/v1/records")).json()["records"]
        assert (await analyst.get(f"/v1/records/{mine}")).status_code == 200
        # Another principal's record is not even confirmed to exist.
        assert_error(await analyst.get(f"/v1/records/{theirs}"), 404, "NOT_FOUND")
        page = await analyst.get(f"/ui/records/{theirs}")
    assert [r["record_id"] for r in listed] == [mine]
    assert page.status_code == 404 and "NOT_FOUND" in page.text


async def test_the_search_page_filters_by_dates_and_names_a_bad_one(
    web: Web, denied_applicant: dict[str, Any]
) -> None:
    async with web.client("decider") as decider:
        body = {"model_id": GBM, "features": denied_applicant, "decision_id": "loan-dated"}
        record_id = (await decider.post("/v1/explain", json=body)).json()["record_id"]
    today = datetime.now(UTC).date()
    async with web.client("auditor") as auditor:
        found = await auditor.get(f"/ui/records?since={today}&until={today}")
        before = await auditor.get(f"/ui/records?until={today - timedelta(days=1)}")
        after = await auditor.get(f"/ui/records?since={today + timedelta(days=1)}")
        bad = await auditor.get("/ui/records?since=yesterday")
    assert found.status_code == 200 and record_id in found.text
    for empty in (before, after):
        assert empty.status_code == 200 and record_id not in empty.text
        assert "No records match." in empty.text
    assert bad.status_code == 400
    assert "<code>since</code>: not a date (YYYY-MM-DD)" in bad.text


async def test_the_pages_address_printed_at_start_opens_the_record_search(web: Web) -> None:
    # The server prints ".../ui" as the pages' address; it, "/ui/" and "/" must open the
    # record search (the login page first for a browser without a session).
    async with web.client() as browser:
        for path in ("/ui", "/ui/", "/"):
            answer = await browser.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"] == "/ui/records", path
            landed = await browser.get(path, follow_redirects=True)
            assert landed.status_code == 200 and landed.url.path == "/ui/login", path


async def test_the_pages_api_link_opens_the_browsable_documentation(web: Web) -> None:
    # It pointed at the raw /openapi.json; /docs is now served from the service itself.
    async with web.client() as browser:
        login = await browser.get("/ui/login")
        assert '<a href="/docs">API</a>' in login.text
        docs = await browser.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
