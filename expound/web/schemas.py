"""The JSON bodies of the HTTP face: one pydantic model per gRPC message it mirrors.

Byte strings (hashes, signatures, audit paths) are lowercase hex, as in
:meth:`expound.archive.checkpoint.Checkpoint.to_json`; times are RFC 3339 UTC text. The
explanation itself is :class:`expound.domain.Explanation`, the very model the archive keeps.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from expound.archive.checkpoint import Checkpoint
from expound.archive.records import StoredRecord
from expound.archive.store import AccessEntry, ConsistencyProof, InclusionProof
from expound.domain import Audience, Explanation, FeatureScalar
from expound.models.registry import ReloadReport, ServedModel, UnavailableModel
from expound.pipeline.explain import MAX_FEATURES, MAX_ID_CHARS

# Upper bounds a JSON client may send; the pipeline and record service check the rest.
MAX_SEED = (1 << 64) - 1
MAX_TEXT_CHARS = 10_000

Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
Identifier = Annotated[str, Field(max_length=MAX_ID_CHARS)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldViolationBody(_Body):
    """One offending field of a request (``google.rpc.BadRequest.FieldViolation``)."""

    field: str
    description: str


class ErrorBody(_Body):
    """Every error answer: the gRPC code name, a message, field violations, request id.

    Never a traceback: an unexpected failure says ``internal error`` and the request id.
    """

    code: str = Field(description="gRPC status code name, e.g. PERMISSION_DENIED")
    message: str
    field_violations: list[FieldViolationBody] = Field(default_factory=list)
    request_id: str
    retry_after_s: float | None = Field(
        default=None, description="for RESOURCE_EXHAUSTED: when to retry"
    )


class ExplainBody(_Body):
    """One decision to explain (the gRPC ExplainRequest)."""

    model_id: Identifier
    features: dict[Annotated[str, Field(max_length=MAX_ID_CHARS)], FeatureScalar] = Field(
        max_length=MAX_FEATURES
    )
    question: Text = ""
    audience: Audience | None = None
    decision_id: Identifier = ""
    idempotency_key: Identifier = ""
    num_candidates: int = Field(default=0, ge=0, le=1000)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    what_if: bool = Field(
        default=False, description="analysts only: answer without archiving (not a record)"
    )


class ExplainAnswer(Explanation):
    """The explanation, as archived, and whether it was archived (false: what-if)."""

    archived: bool


class CheckpointBody(_Body):
    """A signed checkpoint; ``note`` is the C2SP signed note ("" for the old format)."""

    log_id: str
    size: int
    root_hash: str
    timestamp: str
    signature: str
    key_id: str = ""
    note: str = ""

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> CheckpointBody:
        """The body of ``checkpoint``."""
        note = checkpoint.note() if checkpoint.key_id else ""
        return cls(**checkpoint.to_json(), note=note)


class InclusionProofBody(_Body):
    """A record's audit path to the signed checkpoint that covers it."""

    leaf_index: int
    tree_size: int
    leaf_hash: str
    audit_path: list[str]
    checkpoint: CheckpointBody

    @classmethod
    def of(cls, proof: InclusionProof) -> InclusionProofBody:
        """The body of ``proof``."""
        return cls(
            leaf_index=proof.leaf_index,
            tree_size=proof.checkpoint.size,
            leaf_hash=proof.leaf_hash.hex(),
            audit_path=[node.hex() for node in proof.audit_path],
            checkpoint=CheckpointBody.of(proof.checkpoint),
        )


class RecordBody(_Body):
    """An archived record: its columns and its canonical JSON, byte for byte."""

    record_id: str
    model_id: str
    decision_id: str
    created_at: str
    sha256: str
    canonical_json: str = Field(description='the archived entry ("" once expired)')
    seq: int
    kind: str
    retain_until: str
    legal_hold: bool
    expired: bool
    principal: str
    proof: InclusionProofBody | None = None

    @classmethod
    def of(cls, record: StoredRecord, proof: InclusionProof | None = None) -> RecordBody:
        """The body of ``record`` (with its inclusion proof when given)."""
        return cls(
            record_id=record.record_id,
            model_id=record.model_id,
            decision_id=record.decision_id,
            created_at=record.created_at,
            sha256=record.sha256,
            canonical_json=record.canonical.decode("utf-8", "replace"),
            seq=record.seq,
            kind=record.kind,
            retain_until=record.retain_until,
            legal_hold=record.legal_hold,
            expired=record.expired,
            principal=record.principal,
            proof=InclusionProofBody.of(proof) if proof is not None else None,
        )


class RecordSummaryBody(_Body):
    """One line of a record listing."""

    record_id: str
    model_id: str
    decision_id: str
    created_at: str
    decision: str
    sha256: str

    @classmethod
    def of(cls, record: StoredRecord) -> RecordSummaryBody:
        """The summary of ``record``."""
        return cls(
            record_id=record.record_id,
            model_id=record.model_id,
            decision_id=record.decision_id,
            created_at=record.created_at,
            decision=record.decision,
            sha256=record.sha256,
        )


class RecordListBody(_Body):
    """A page of records, newest first; pass ``next_page_token`` on for the next."""

    records: list[RecordSummaryBody]
    next_page_token: str


class ConsistencyProofBody(_Body):
    """Proof that the log at ``old`` is a prefix of the log at ``new``."""

    old: CheckpointBody | None
    new: CheckpointBody
    proof: list[str]

    @classmethod
    def of(cls, proof: ConsistencyProof) -> ConsistencyProofBody:
        """The body of ``proof``."""
        return cls(
            old=CheckpointBody.of(proof.old) if proof.old is not None else None,
            new=CheckpointBody.of(proof.new),
            proof=[node.hex() for node in proof.path],
        )


class ValueLabelBody(_Body):
    """One integer code of a banded feature and its reviewed label."""

    code: int
    label: str


class FeatureSchemaBody(_Body):
    """One input feature of a model."""

    name: str
    type: str
    description: str
    unit: str
    minimum: float | None
    maximum: float | None
    categories: list[str]
    protected: bool
    actionable: bool
    nullable: bool
    # By code, ascending; a client shows the label ("35% or more"), never the bare code.
    value_labels: list[ValueLabelBody] = Field(default_factory=list)
    # Category -> the words explanations use for it; a category without one is its name.
    category_descriptions: dict[str, str] = Field(default_factory=dict)


class ReasonCodeBody(_Body):
    """One adverse-action reason code of a model, in both its wordings."""

    code: str
    text: str = Field(description="as the applicant reads it (notices, applicant texts)")
    neutral_text: str = Field(description="in the third person (compliance, analyst texts)")
    features: list[str]


class ModelBody(_Body):
    """A model's public description, or why it is unavailable."""

    model_id: str
    available: bool
    unavailable_reason: str = ""
    version: str = ""
    title: str = ""
    kind: str = ""
    artifact_sha256: str = ""
    score_meaning: str = ""
    threshold: float | None = None
    adverse_when: str = ""
    explainer: str = ""
    units: str = ""
    features: list[FeatureSchemaBody] = Field(default_factory=list)
    reasons: list[ReasonCodeBody] = Field(default_factory=list)

    @classmethod
    def of(cls, model: ServedModel | UnavailableModel) -> ModelBody:
        """The description of a served model, or an unavailable one's reason."""
        if isinstance(model, UnavailableModel):
            return cls(model_id=model.model_id, available=False, unavailable_reason=model.reason)
        manifest = model.manifest
        return cls(
            model_id=manifest.model_id,
            available=True,
            version=manifest.version,
            title=manifest.title,
            kind=manifest.kind,
            artifact_sha256=manifest.artifact_sha256,
            score_meaning=manifest.score_meaning,
            threshold=manifest.decision.threshold,
            adverse_when=manifest.decision.describe(),
            explainer=model.explainer.algorithm,
            units=manifest.units,
            features=[
                FeatureSchemaBody(
                    name=spec.name,
                    type=spec.type,
                    description=spec.description,
                    unit=spec.unit,
                    minimum=spec.minimum,
                    maximum=spec.maximum,
                    categories=spec.categories or [],
                    protected=spec.protected,
                    actionable=spec.actionable,
                    nullable=spec.nullable,
                    value_labels=[
                        ValueLabelBody(code=code, label=label)
                        for code, label in spec.labelled_codes()
                    ],
                    category_descriptions=dict(spec.category_descriptions),
                )
                for spec in manifest.features
            ],
            reasons=[
                ReasonCodeBody(
                    code=r.code, text=r.text, neutral_text=r.third_person, features=r.features
                )
                for r in manifest.reasons
            ],
        )


class ModelListBody(_Body):
    """Every model directory: served ones and unavailable ones."""

    models: list[ModelBody]


class ReloadBody(_Body):
    """What a reload of the model directory changed, by model id."""

    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: list[str]
    unavailable: list[ModelBody]

    @classmethod
    def of(cls, report: ReloadReport) -> ReloadBody:
        """The body of ``report``."""
        return cls(
            added=report.added,
            changed=report.changed,
            removed=report.removed,
            unchanged=report.unchanged,
            unavailable=[ModelBody.of(model) for model in report.unavailable],
        )


class HoldBody(_Body):
    """Why a hold is placed or released (e.g. the matter's reference)."""

    reason: Text


class ExpireBody(_Body):
    """Which records to expire (none: every record now due), and why."""

    record_ids: list[Identifier] = Field(default_factory=list, max_length=1000)
    reason: Text = ""


class RecordEventBody(_Body):
    """A hold, release or tombstone: a signed log event naming its actor."""

    seq: int
    event_id: str
    kind: str
    record_id: str
    actor: str
    reason: str
    created_at: str
    target_seq: int | None
    hold_event_id: str
    canonical_json: str

    @classmethod
    def of(cls, event: StoredRecord) -> RecordEventBody:
        """The body of ``event``."""
        body = event.body()
        return cls(
            seq=event.seq,
            event_id=event.record_id,
            kind=event.kind,
            record_id=str(body.get("target_record_id") or body.get("expired_record_id") or ""),
            actor=event.principal,
            reason=str(body.get("reason", "")),
            created_at=event.created_at,
            target_seq=event.target_seq,
            hold_event_id=str(body.get("hold_record_id", "")),
            canonical_json=event.canonical.decode("utf-8"),
        )


class RecordHistoryBody(_Body):
    """The events on a record, oldest first."""

    events: list[RecordEventBody]


class ExpiryBody(_Body):
    """The tombstones one expiry run wrote."""

    tombstones: list[RecordEventBody]


class AccessEntryBody(_Body):
    """One read of archived records: who, which, when, through which call."""

    seq: int
    at: str
    principal: str
    rpc: str
    request_id: str
    record_ids: list[str]

    @classmethod
    def of(cls, entry: AccessEntry) -> AccessEntryBody:
        """The body of ``entry``."""
        return cls.model_validate(entry.to_json())


class AccessLogBody(_Body):
    """A page of the access log; ``next_after_seq`` 0 when there are no more."""

    entries: list[AccessEntryBody]
    next_after_seq: int
