"""The model's reviewed wording on the wire: value labels, category descriptions and the
reason table in both voices, over a real gRPC socket (GetModel) and the HTTP face (JSON
against its own OpenAPI document, and the model page), filled from the manifest."""

from __future__ import annotations

from typing import Any

import jsonschema

from expound.models.demo_schema import FEATURES, REASONS
from expound.v1 import explain_pb2 as pb
from tests.conftest import GBM, LOGISTIC
from tests.unit.test_web_api import Web, web  # noqa: F401  (the HTTP face fixture)

BANDED = [spec for spec in FEATURES if spec.value_labels]
DESCRIBED = [spec for spec in FEATURES if spec.category_descriptions]


async def test_get_model_returns_every_value_label_by_code_and_every_category_wording(
    stub: Any,
) -> None:
    assert BANDED and DESCRIBED  # the demo has both kinds, or this checks nothing
    info = await stub.GetModel(pb.GetModelRequest(model_id=LOGISTIC))
    by_name = {f.name: f for f in info.features}
    for spec in BANDED:
        sent = [(v.code, v.label) for v in by_name[spec.name].value_labels]
        assert sent == sorted((int(k), v) for k, v in spec.value_labels.items())
    for spec in DESCRIBED:
        assert dict(by_name[spec.name].category_descriptions) == spec.category_descriptions
    rate = by_name["installment_rate"]
    assert (rate.value_labels[0].code, rate.value_labels[0].label) == (1, "35% or more")
    # A plain count has no labels: nothing made up.
    assert list(by_name["existing_credits"].value_labels) == []
    # The reason table in both voices: the applicant's and the third person's.
    assert [(r.code, r.text, r.neutral_text, list(r.features)) for r in info.reasons] == [
        (e.code, e.text, e.third_person, e.features) for e in REASONS
    ]
    checking = next(r for r in info.reasons if r.code == "CHK01")
    assert checking.neutral_text == "Status or balance of the applicant's checking account"
    listed = await stub.ListModels(pb.ListModelsRequest())
    assert all(len(m.features[0].category_descriptions) > 0 for m in listed.models)


def _response_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    """The JSON schema of ``path``'s 200 answer, resolvable within ``document``."""
    content = document["paths"][path]["get"]["responses"]["200"]["content"]
    schema: dict[str, Any] = content["application/json"]["schema"]
    return schema


async def test_http_model_carries_the_labels_as_its_openapi_document_describes(
    web: Web,  # noqa: F811
) -> None:
    async with web.client("auditor") as auditor:
        document = (await auditor.get("/openapi.json")).json()
        answer = await auditor.get(f"/v1/models/{GBM}")
        page = await auditor.get(f"/ui/models/{GBM}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    schema = _response_schema(document, "/v1/models/{model_id}")
    # The document's own refs ("#/components/...") resolve against the root given here.
    validator = jsonschema.Draft202012Validator({**schema, "components": document["components"]})
    validator.validate(body)
    feature = document["components"]["schemas"]["FeatureSchemaBody"]["properties"]
    assert {"value_labels", "category_descriptions"} <= set(feature)
    by_name = {f["name"]: f for f in body["features"]}
    for spec in BANDED:
        assert by_name[spec.name]["value_labels"] == [
            {"code": int(k), "label": v}
            for k, v in sorted(spec.value_labels.items(), key=lambda kv: int(kv[0]))
        ]
    for spec in DESCRIBED:
        assert by_name[spec.name]["category_descriptions"] == spec.category_descriptions
    assert [(r["code"], r["text"], r["neutral_text"]) for r in body["reasons"]] == [
        (e.code, e.text, e.third_person) for e in REASONS
    ]
    # A body that drops a label's code fails the schema: the validation above can fail.
    broken = {**by_name["installment_rate"], "value_labels": [{"label": "35% or more"}]}
    assert not validator.is_valid({**body, "features": [broken]})
    # The model page shows each code with its label, and each category with its words.
    assert page.status_code == 200, page.text
    assert "<code>1</code>: 35% or more" in page.text
    assert "<code>radio_tv</code>: a radio or television" in page.text
    assert "<td>Status or balance of the applicant&#39;s checking account</td>" in page.text
