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

from expound.archive import merkle
from expound.domain import ExplainRequest, Explanation

RECORD_SCHEMA = "expound.record/v1"
TOMBSTONE_SCHEMA = "expound.tombstone/v1"
KIND_RECORD = "record"
KIND_TOMBSTONE = "tombstone"


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
    kind: str = KIND_RECORD

    @property
    def sha256(self) -> str:
        """sha256 of the canonical bytes."""
        return hashlib.sha256(self.canonical).hexdigest()

    @property
    def leaf_hash(self) -> bytes:
        """The record's Merkle leaf: SHA-256(0x00 || canonical bytes)."""
        return merkle.leaf_hash(self.canonical)


@dataclass(frozen=True)
class StoredRecord:
    """A committed log entry with its position in the log.

    ``seq`` is the 0-based leaf index. An expired record keeps its row and ``leaf_hash``
    but not its payload: ``canonical`` is empty and ``expired`` is true. A ``tombstone``
    entry is the leaf that logged such an expiry.
    """

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
    leaf_hash: bytes = b""
    kind: str = KIND_RECORD
    retain_until: str = ""
    legal_hold: bool = False
    expired: bool = False

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


def build_tombstone(expired: StoredRecord, tombstone_id: str, expired_at: str) -> NewRecord:
    """The log entry that records the expiry of ``expired``'s payload.

    It names the expired leaf by index and hash, so the log itself says which payload was
    removed and when, and every proof over the old leaf still verifies.
    """
    body = {
        "schema": TOMBSTONE_SCHEMA,
        "record_id": tombstone_id,
        "created_at": expired_at,
        "expired_record_id": expired.record_id,
        "expired_seq": expired.seq,
        "expired_leaf_hash": expired.leaf_hash.hex(),
        "retain_until": expired.retain_until,
    }
    return NewRecord(
        record_id=tombstone_id,
        model_id=expired.model_id,
        decision_id=expired.decision_id,
        idempotency_key="",
        request_sha256="",
        created_at=expired_at,
        decision="",
        canonical=canonical_json(body),
        kind=KIND_TOMBSTONE,
    )
