"""The record of one answered Explain call, as the archive keeps it.

The record holds the request exactly as received (an unspecified audience stays
unspecified, 0 candidates and seed 0 stay 0), the values the service resolved them to
beside it, and the answer. The idempotency fingerprint is over the request as received,
so a retry of the same request replays its record whatever the server's defaults are now.
"""

from __future__ import annotations

import hashlib

from expound.archive.records import NewRecord, canonical_json
from expound.domain import ExplainRequest, Explanation, ResolvedRequest
from expound.explainers.plan import ContentPlan

RECORD_SCHEMA = "expound.record/v2"


def request_fingerprint(request: ExplainRequest) -> str:
    """sha256 of the canonical request: equal fingerprints mean the same request."""
    return hashlib.sha256(canonical_json(request.model_dump(mode="json"))).hexdigest()


def build_record(
    request: ExplainRequest,
    resolved: ResolvedRequest,
    explanation: Explanation,
    service_version: str,
    plan: ContentPlan | None = None,
) -> NewRecord:
    """Assembles the canonical record of one answered Explain call.

    ``plan`` is the decision's content plan (its reference sample by hash, the verified
    counterfactuals): what the texts were written from and checked against.
    """
    fingerprint = request_fingerprint(request)
    body = {
        "schema": RECORD_SCHEMA,
        "record_id": explanation.record_id,
        "created_at": explanation.created_at,
        "service_version": service_version,
        "request": request.model_dump(mode="json"),
        "request_sha256": fingerprint,
        "resolved": resolved.model_dump(mode="json"),
        "response": explanation.model_dump(mode="json"),
    }
    if plan is not None:
        body["plan"] = plan.model_dump(mode="json")
    return NewRecord(
        record_id=explanation.record_id,
        model_id=explanation.model_id,
        decision_id=explanation.decision_id,
        idempotency_key=request.idempotency_key,
        request_sha256=fingerprint,
        created_at=explanation.created_at,
        decision=explanation.prediction.decision,
        canonical=canonical_json(body),
    )
