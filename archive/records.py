"""Archived records: what is kept for every Explain answer, as canonical JSON.

A record is RFC 8785 (JCS) canonical JSON of a plain dict, never pickle; its sha256 is
over exactly those bytes, so anyone can recompute it from the stored text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import rfc8785

from expound.domain import ExplainRequest, Explanation

RECORD_SCHEMA = "expound.record/v1"


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical bytes of a JSON-compatible value."""
    return rfc8785.dumps(value)


def request_fingerprint(request: ExplainRequest) -> str:
    """sha256 of the canonical request: equal fingerprints mean the same request."""
    return hashlib.sha256(canonical_json(request.model_dump(mode="json"))).hexdigest()


@dataclass(frozen=True)
class NewRecord:
    """A record ready to append: its canonical bytes and the columns indexed beside them."""

    record_id: str
    model_id: str
    decision_id: str
    idempotency_key: str
    request_sha256: str
    created_at: str
    decision: str
    canonical: bytes

    @property
    def sha256(self) -> str:
        """sha256 of the canonical bytes."""
        return hashlib.sha256(self.canonical).hexdigest()


@dataclass(frozen=True)
class StoredRecord:
    """A committed record with its position in the log."""

    seq: int
    record_id: str
    model_id: str
    decision_id: str
    idempotency_key: str
    request_sha256: str
    created_at: str
    decision: str
    sha256: str
    canonical: bytes

    def explanation(self) -> Explanation:
        """The Explain answer this record holds."""
        return Explanation.model_validate(json.loads(self.canonical)["response"])


def build_record(
    request: ExplainRequest, explanation: Explanation, service_version: str
) -> NewRecord:
    """Assembles the canonical record of one answered Explain call."""
    fingerprint = request_fingerprint(request)
    body = {
        "schema": RECORD_SCHEMA,
        "record_id": explanation.record_id,
        "created_at": explanation.created_at,
        "service_version": service_version,
        "request": request.model_dump(mode="json"),
        "request_sha256": fingerprint,
        "response": explanation.model_dump(mode="json"),
    }
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
