"""The gRPC service over a real loopback socket: answers, records, errors, health."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from expound.clients.client import explain_request
from expound.errors import StartupError
from expound.server.app import SERVICE_NAME, RunningServer, running_server
from expound.settings import Settings
from expound.v1 import explain_pb2 as pb
from expound.v1 import explain_pb2_grpc
from expound.wire import feature_to_pb
from tests.conftest import GBM, LOGISTIC

request = explain_request


def bad_request_fields(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "rich status details missing"
    fields: dict[str, str] = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields.update({v.field: v.description for v in bad.field_violations})
    return fields


async def record_count(settings: Settings) -> int:
    with sqlite3.connect(settings.archive_path) as conn:
        return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])


async def test_explain_denied_applicant(stub: Any, denied_applicant: dict[str, Any]) -> None:
    response = await stub.Explain(request(GBM, denied_applicant, decision_id="loan-1"))
    assert response.prediction.decision == "decline"
    assert response.prediction.adverse
    assert response.prediction.score >= response.prediction.threshold
    assert 1 <= len(response.principal_reasons) <= 4
    attributions = response.attributions
    total = attributions.base_value + sum(i.contribution for i in attributions.items)
    assert total == pytest.approx(attributions.model_output, abs=1e-6)
    assert attributions.units == "log-odds of default"
    assert attributions.algorithm == "treeshap-path-dependent"
    assert response.selected.deterministic and response.selected.text.startswith(
        "Your application was declined."
    )
    assert [c.text for c in response.candidates] == [response.selected.text]
    assert {t.stage for t in response.timings} >= {"validate", "attribute", "reasons", "archive"}
    assert response.record_id and response.decision_id == "loan-1"


async def test_approved_applicant_has_no_reasons(
    stub: Any, approved_applicant: dict[str, Any]
) -> None:
    response = await stub.Explain(request(LOGISTIC, approved_applicant, audience=pb.ANALYST))
    assert response.prediction.decision == "approve"
    assert list(response.principal_reasons) == []
    assert response.selected.text.startswith("Decision: approve")


async def test_record_holds_exactly_the_answer(stub: Any, denied_applicant: dict[str, Any]) -> None:
    response = await stub.Explain(
        request(GBM, denied_applicant, question="Why?", decision_id="d-7")
    )
    record = await stub.GetRecord(pb.GetRecordRequest(record_id=response.record_id))
    assert hashlib.sha256(record.canonical_json.encode()).hexdigest() == record.sha256
    body = json.loads(record.canonical_json)
    assert body["request"]["question"] == "Why?"
    assert body["response"]["artifact_sha256"] == body["response"]["artifact_sha256"].lower()
    assert body["response"]["attributions"]["library_version"].startswith("lightgbm")
    assert record.response.attributions == response.attributions
    assert record.response.principal_reasons == response.principal_reasons
    assert record.response.selected == response.selected


async def test_the_answer_carries_its_content_plan_as_archived(
    stub: Any, denied_applicant: dict[str, Any]
) -> None:
    response = await stub.Explain(request(GBM, denied_applicant, audience=pb.ANALYST))
    plan = response.plan
    record = await stub.GetRecord(pb.GetRecordRequest(record_id=response.record_id))
    archived = json.loads(record.canonical_json)["plan"]
    # The archive holds the plan beside the response, not inside it: records keep their bytes.
    assert "plan" not in json.loads(record.canonical_json)["response"]
    assert record.response.plan == plan
    assert plan.version == archived["version"] and plan.attribution_method == "exact"
    assert [f.feature for f in plan.factors] == [f["feature"] for f in archived["factors"]]
    by_rank = {i.feature: i for i in response.attributions.items}
    for factor, stored in zip(plan.factors, archived["factors"], strict=True):
        assert factor.contribution == by_rank[factor.feature].contribution
        assert factor.direction == stored["direction"] and factor.share == stored["share"]
        assert factor.share_words == (stored["share_words"] or "")
        assert factor.HasField("percentile") == (stored["percentile"] is not None)
    assert plan.reference.rows == archived["reference"]["rows"] > 0
    flips = [c for c in plan.recourse.counterfactuals if c.flips]
    assert flips and flips[0].score < response.prediction.threshold
    stated = flips[0].changes[0]
    assert stated.before == feature_to_pb(denied_applicant[stated.feature])
    # The analyst's text states the recorded counterfactual's score.
    assert f"{flips[0].score:.3f}" in response.selected.text


async def test_list_records_filters_and_pages(stub: Any, denied_applicant: dict[str, Any]) -> None:
    ids = []
    for i, model_id in enumerate([GBM, LOGISTIC, GBM, GBM]):
        response = await stub.Explain(request(model_id, denied_applicant, decision_id=f"d{i}"))
        ids.append(response.record_id)
    first = await stub.ListRecords(pb.ListRecordsRequest(model_id=GBM, page_size=2))
    assert [r.record_id for r in first.records] == [ids[3], ids[2]]
    second = await stub.ListRecords(
        pb.ListRecordsRequest(model_id=GBM, page_size=2, page_token=first.next_page_token)
    )
    assert [r.record_id for r in second.records] == [ids[0]]
    assert second.next_page_token == ""
    by_decision = await stub.ListRecords(pb.ListRecordsRequest(decision_id="d1"))
    assert [r.record_id for r in by_decision.records] == [ids[1]]
    future = pb.ListRecordsRequest()
    future.since.FromJsonString("2999-01-01T00:00:00Z")
    assert list((await stub.ListRecords(future)).records) == []


async def test_models_are_listed_with_their_schema(stub: Any) -> None:
    listed = await stub.ListModels(pb.ListModelsRequest())
    assert [m.model_id for m in listed.models] == [GBM, LOGISTIC]
    info = await stub.GetModel(pb.GetModelRequest(model_id=LOGISTIC))
    assert info.explainer == "linear-shap-interventional"
    age = next(f for f in info.features if f.name == "age_years")
    assert age.protected and age.minimum == 18
    checking = next(f for f in info.features if f.name == "checking_account")
    assert "overdrawn" in checking.categories
    assert len(info.artifact_sha256) == 64


async def test_unknown_model_is_not_found(
    stub: Any, denied_applicant: dict[str, Any], settings: Settings
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(request("no-such-model", denied_applicant))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-model" in (caught.value.details() or "")
    assert await record_count(settings) == 0


async def test_every_bad_feature_is_named(
    stub: Any, denied_applicant: dict[str, Any], settings: Settings
) -> None:
    features = dict(denied_applicant)
    del features["savings"]
    features.update(
        duration_months=500,  # out of range
        credit_amount="lots",  # wrong type
        checking_account="gold",  # unknown category
        installment_rate=2.5,  # not an integer
        has_telephone=1.0,  # number for a bool
        favourite_colour="blue",  # extra
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(request(GBM, features))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = bad_request_fields(caught.value)
    assert set(fields) == {
        f"features[{n}]"
        for n in [
            "savings",
            "duration_months",
            "credit_amount",
            "checking_account",
            "installment_rate",
            "has_telephone",
            "favourite_colour",
        ]
    }
    assert "at most 120" in fields["features[duration_months]"]
    assert await record_count(settings) == 0


async def test_unset_and_null_values_are_rejected(
    stub: Any, denied_applicant: dict[str, Any]
) -> None:
    message = request(GBM, denied_applicant)
    message.features["savings"].Clear()
    message.features["credit_amount"].CopyFrom(feature_to_pb(None))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(message)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(bad_request_fields(caught.value)) == {"features[savings]"}
    message.features["savings"].CopyFrom(feature_to_pb("below_100_dm"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(message)
    assert bad_request_fields(caught.value) == {"features[credit_amount]": "must not be null"}


async def test_oversized_message_is_refused(stub: Any, denied_applicant: dict[str, Any]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(request(GBM, denied_applicant, question="x" * (2 << 20)))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_idempotency_key(
    stub: Any, denied_applicant: dict[str, Any], settings: Settings
) -> None:
    first = await stub.Explain(request(GBM, denied_applicant, idempotency_key="k-1"))
    again = await stub.Explain(request(GBM, denied_applicant, idempotency_key="k-1"))
    assert again.record_id == first.record_id
    assert again.attributions == first.attributions
    changed = dict(denied_applicant, credit_amount=1000)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(request(GBM, changed, idempotency_key="k-1"))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "different request" in (caught.value.details() or "")
    assert await record_count(settings) == 1


async def test_the_record_keeps_the_request_as_received_and_what_was_resolved(
    stub: Any, denied_applicant: dict[str, Any], settings: Settings
) -> None:
    unspecified = await stub.Explain(request(GBM, denied_applicant))
    record = await stub.GetRecord(pb.GetRecordRequest(record_id=unspecified.record_id))
    body = json.loads(record.canonical_json)
    assert body["schema"] == "expound.record/v4"
    assert (body["principal"], body["decision"]) == ("anonymous", "decline")
    assert body["retain_until"] == record.retain_until
    sent = body["request"]
    assert sent["audience"] is None
    assert sent["num_candidates"] == 0 and sent["drafting_seed"] == 0
    assert body["resolved"] == {
        "audience": "APPLICANT",
        "num_candidates": settings.default_candidates,
        "drafting_seed": settings.default_seed,
    }
    assert body["response"]["audience"] == "APPLICANT"
    explicit = await stub.Explain(
        request(GBM, denied_applicant, audience=pb.APPLICANT, num_candidates=2, seed=9)
    )
    record = await stub.GetRecord(pb.GetRecordRequest(record_id=explicit.record_id))
    body = json.loads(record.canonical_json)
    assert body["request"]["audience"] == "APPLICANT"
    assert body["resolved"] == {"audience": "APPLICANT", "num_candidates": 2, "drafting_seed": 9}
    # The same answer either way: only the record tells the two requests apart.
    assert explicit.selected.text == unspecified.selected.text


async def test_replay_is_of_the_request_as_received(
    stub: Any, denied_applicant: dict[str, Any], settings: Settings
) -> None:
    first = await stub.Explain(request(GBM, denied_applicant, idempotency_key="k-as-sent"))
    again = await stub.Explain(request(GBM, denied_applicant, idempotency_key="k-as-sent"))
    assert again.record_id == first.record_id
    # Resolved alike, but not the same request: the key may not be reused for it.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(
            request(GBM, denied_applicant, audience=pb.APPLICANT, idempotency_key="k-as-sent")
        )
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert await record_count(settings) == 1


async def test_concurrent_requests_with_one_key_make_one_record(
    stub: Any, denied_applicant: dict[str, Any], settings: Settings
) -> None:
    import asyncio

    responses = await asyncio.gather(
        *[stub.Explain(request(GBM, denied_applicant, idempotency_key="race")) for _ in range(8)]
    )
    assert len({r.record_id for r in responses}) == 1
    assert await record_count(settings) == 1


async def test_archive_failure_fails_the_call_and_writes_nothing(
    stub: Any, denied_applicant: dict[str, Any], settings: Settings
) -> None:
    with sqlite3.connect(settings.archive_path) as conn:
        conn.execute(
            "CREATE TRIGGER full_disk BEFORE INSERT ON records "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(request(GBM, denied_applicant))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "could not be committed" in (caught.value.details() or "")
    assert await record_count(settings) == 0


async def test_records_cannot_be_updated_or_deleted(
    stub: Any, denied_applicant: dict[str, Any], settings: Settings
) -> None:
    await stub.Explain(request(GBM, denied_applicant))
    with sqlite3.connect(settings.archive_path) as conn:
        for statement in ("UPDATE records SET decision = 'approve'", "DELETE FROM records"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)


async def test_unknown_record_and_bad_page_token(stub: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetRecord(pb.GetRecordRequest(record_id="nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListRecords(pb.ListRecordsRequest(page_token="'; drop table records"))
    assert bad_request_fields(caught.value) == {"page_token": "not a token this service issued"}


async def test_health_and_reflection(channel: grpc.aio.Channel, service: RunningServer) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = reflect.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    async for reply in replies:
        names = {s.name for s in reply.list_services_response.service}
        assert SERVICE_NAME in names
        break


async def test_unexpected_exception_is_internal_without_traceback(
    stub: Any,
    service: RunningServer,
    denied_applicant: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def explode(*args: Any, **kwargs: Any) -> None:
        raise KeyError("secret internal detail")

    monkeypatch.setattr(service.pipeline, "explain", explode)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Explain(request(GBM, denied_applicant), metadata=(("x-request-id", "req-42"),))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error (request id req-42)"
    assert "secret" not in str(caught.value.debug_error_string())


def test_servicer_holds_no_logic() -> None:
    """The servicer module imports the pipeline and converters, nothing that computes."""
    import ast
    from pathlib import Path

    import expound.server.servicer as servicer

    imports = {
        node.module
        for node in ast.walk(ast.parse(Path(servicer.__file__).read_text()))
        if isinstance(node, ast.ImportFrom)
    }
    assert not {m for m in imports if m and m.startswith(("expound.explainers", "expound.archive"))}
    assert explain_pb2_grpc.ExplainServiceServicer in servicer.ExplainServicer.__mro__


async def test_records_written_before_the_seed_rename_still_read(
    service: RunningServer, denied_applicant: dict[str, Any]
) -> None:
    from expound.domain import Attributions, ExplainRequest

    answer = await service.pipeline.explain(ExplainRequest(model_id=GBM, features=denied_applicant))
    written = answer.attributions.model_dump(mode="json")
    assert "seed" not in written
    written["seed"] = written.pop("sampling_seed")
    assert Attributions.model_validate(written) == answer.attributions


async def test_a_second_server_on_the_same_port_is_refused(
    service: RunningServer, settings: Settings, tmp_path: Any
) -> None:
    # Without grpc.so_reuseport off, both would listen and the kernel would split the calls.
    second = settings.model_copy(
        update={"port": service.port, "archive_path": tmp_path / "second.sqlite3"}
    )
    with pytest.raises(StartupError, match=f"127.0.0.1:{service.port}.*in use"):
        async with running_server(second):
            pass
