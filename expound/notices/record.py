"""What a notice takes from an archived record, and only that.

The record's canonical JSON (the text its proof covers) is checked against the record's
sha256 and read as the decision it archived. The explanation text is kept for the notice
only when it was written for the applicant and passed the faithfulness gate: text drafted
for analysts or compliance ("Base value -1.218 ...") never reaches an applicant.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from expound.domain import Audience, Explanation
from expound.notices.errors import NoticeError
from expound.times import parse_utc
from expound.v1 import explain_pb2 as pb


@dataclass(frozen=True)
class NoticeReason:
    """One principal reason: its rank, code and applicant-language text."""

    rank: int
    code: str
    text: str


@dataclass(frozen=True)
class Verification:
    """The handle with which anyone holding the log's public key checks the record."""

    record_id: str
    record_sha256: str
    leaf_index: int | None = None
    log_id: str = ""
    log_size: int | None = None
    root_hash: str = ""
    signed_at: str = ""


@dataclass(frozen=True)
class NoticeRecord:
    """The decision a notice is given for."""

    record_id: str
    decision_id: str
    decided_at: datetime
    model_id: str
    model_version: str
    decision: str
    adverse: bool
    reasons: tuple[NoticeReason, ...]
    # The selected explanation, when it was written for the applicant and passed the gate.
    applicant_text: str | None
    verification: Verification


def notice_record(record: pb.Record) -> NoticeRecord:
    """Reads the decision of an archived record (fetched with its proof, for the handle).

    Raises:
        NoticeError: If the record holds no decision (a tombstone, an expired payload),
            its canonical JSON does not match its sha256, or it is not a decision record.
    """
    if record.kind != "record" or record.expired or not record.canonical_json:
        raise NoticeError(f"record {record.record_id} holds no decision to give notice of")
    digest = hashlib.sha256(record.canonical_json.encode("utf-8")).hexdigest()
    if digest != record.sha256:
        raise NoticeError(
            f"record {record.record_id}: its canonical JSON does not match its sha256; "
            "check it with expound archive verify"
        )
    try:
        body = json.loads(record.canonical_json)
        explanation = Explanation.model_validate(body["response"])
        decided_at = parse_utc(body["created_at"])
    except (ValueError, KeyError, TypeError, ValidationError) as error:
        raise NoticeError(
            f"record {record.record_id}: not a decision record this version can read"
        ) from error
    selected = explanation.selected
    applicant_text = (
        selected.text if explanation.audience is Audience.APPLICANT and selected.faithful else None
    )
    verification = Verification(record_id=record.record_id, record_sha256=record.sha256)
    if record.HasField("proof"):
        checkpoint = record.proof.checkpoint
        verification = Verification(
            record_id=record.record_id,
            record_sha256=record.sha256,
            leaf_index=record.proof.leaf_index,
            log_id=checkpoint.log_id,
            log_size=checkpoint.size,
            root_hash=bytes(checkpoint.root_hash).hex(),
            signed_at=checkpoint.timestamp,
        )
    return NoticeRecord(
        record_id=record.record_id,
        decision_id=explanation.decision_id or record.record_id,
        decided_at=decided_at,
        model_id=explanation.model_id,
        model_version=explanation.model_version,
        decision=explanation.prediction.decision,
        adverse=explanation.prediction.adverse,
        reasons=tuple(
            NoticeReason(rank=r.rank, code=r.code, text=r.text)
            for r in explanation.principal_reasons
        ),
        applicant_text=applicant_text,
        verification=verification,
    )
