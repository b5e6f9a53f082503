"""The plan is archived with the decision: its reference sample by hash, its verified
counterfactuals, and the deterministic answer written from it (over a real server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from expound.clients.client import explain_request
from expound.explainers.algorithms import build_explainer
from expound.explainers.decision import decide
from expound.models.registry import ModelRegistry
from expound.v1 import explain_pb2 as pb
from tests.conftest import GBM


async def record_body(stub: Any, response: Any) -> dict[str, Any]:
    record = await stub.GetRecord(pb.GetRecordRequest(record_id=response.record_id))
    body: dict[str, Any] = json.loads(record.canonical_json)
    return body


async def test_a_denial_records_its_plan_and_verified_recourse(
    stub: Any, denied_applicant: dict[str, Any], models_dir: Path
) -> None:
    response = await stub.Explain(explain_request(GBM, denied_applicant))
    plan = (await record_body(stub, response))["plan"]
    manifest = json.loads((models_dir / GBM / "manifest.json").read_text())
    assert plan["reference"]["sha256"] == manifest["background_sha256"]
    assert plan["reference"]["sample"] == manifest["background"]
    assert plan["audience"] == "APPLICANT" and plan["factors"]
    counterfactuals = plan["recourse"]["counterfactuals"]
    assert counterfactuals and all(c["flips"] for c in counterfactuals)
    # Re-scored here, from the request's own values: each recorded flip holds.
    model = ModelRegistry.from_directory(models_dir, build_explainer).get(GBM)
    for counterfactual in counterfactuals:
        changed = dict(denied_applicant)
        changed |= {c["feature"]: c["after"] for c in counterfactual["changes"]}
        prediction = decide(model, changed, 1e-6).prediction
        assert not prediction.adverse
        assert abs(prediction.score - counterfactual["score"]) < 1e-12
    # Served without an LLM here: the deterministic answer, written from the plan, states
    # the first recorded counterfactual.
    assert response.selected.deterministic
    assert "instead of" in response.selected.text


async def test_an_approval_records_its_plan_without_recourse(
    stub: Any, approved_applicant: dict[str, Any]
) -> None:
    response = await stub.Explain(explain_request(GBM, approved_applicant, audience=pb.ANALYST))
    plan = (await record_body(stub, response))["plan"]
    assert plan["recourse"] is None
    assert plan["audience"] == "ANALYST"
    assert {f["direction"] for f in plan["factors"]} <= {"adverse", "favourable"}
    assert len(plan["factors"]) == 4
