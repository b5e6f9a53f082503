"""The record of one answered Explain call, as the archive keeps it.

The record holds the request exactly as received (an unspecified audience stays
unspecified, 0 candidates and seed 0 stay 0), the values the service resolved them to
beside it, and the answer. The idempotency fingerprint is over the request as received,
so a retry of the same request replays its record whatever the server's defaults are now.
"""

from __future__ import annotations

import hashlib

from expound.archive.records import KIND_RECORD, NewRecord, canonical_json
from expound.domain import ExplainRequest, Explanation, ResolvedRequest
from expound.explainers.plan import ContentPlan

# v3: v2 plus the archive's indexed columns as top-level fields (so the audit covers them),
# the request id of the call that wrote the record, and the decision's content plan.
# v4: v3 plus each principal reason's third-person wording (response.principal_reasons[]
# .neutral_text). A new schema id because a reader that knows v3 exactly (the service's own
# models forbid unknown fields) must not mistake a v4 body for one. v3 records still read,
# replay, audit and display: their reasons read back with neutral_text "".
RECORD_SCHEMA = "expound.record/v4"


def request_fingerprint(request: ExplainRequest) -> str:
    """sha256 of the canonical request: equal fingerprints mean the same request."""
    return hashlib.sha256(canonical_json(request.model_dump(mode="json"))).hexdigest()


def build_record(
    request: ExplainRequest,
    resolved: ResolvedRequest,
    explanation: Explanation,
    service_version: str,
    principal: str,
    retain_until: str,
    request_id: str = "",
    plan: ContentPlan | None = None,
) -> NewRecord:
    """Assembles the canonical record of one answered Explain call.

    The fields the archive indexes (ids, the caller's principal and idempotency key, the
    decision) are top-level fields of the hashed record, so the audit covers every column;
    the request id joins the record to its call's log lines and trace. ``plan`` is the
    decision's content plan (its reference sample by hash, the verified counterfactuals):
    what the texts were written from and checked against.
    """
    body = {
        "schema": RECORD_SCHEMA,
        "kind": KIND_RECORD,
        "record_id": explanation.record_id,
        "created_at": explanation.created_at,
        "model_id": explanation.model_id,
        "decision_id": explanation.decision_id,
        "decision": explanation.prediction.decision,
        "principal": principal,
        "idempotency_key": request.idempotency_key,
        "retain_until": retain_until,
        "service_version": service_version,
        "request_id": request_id,
        "request": request.model_dump(mode="json"),
        "request_sha256": request_fingerprint(request),
        "resolved": resolved.model_dump(mode="json"),
        "response": explanation.model_dump(mode="json"),
    }
    if plan is not None:
        body["plan"] = plan.model_dump(mode="json")
    return NewRecord.from_body(body)
