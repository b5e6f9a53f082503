"""Conversion between expound.v1 messages and the pipeline's domain objects. No logic."""

from __future__ import annotations

from datetime import UTC

from google.protobuf import timestamp_pb2

from expound.archive.checkpoint import Checkpoint
from expound.archive.records import KIND_RECORD, StoredRecord
from expound.archive.store import AccessEntry, ConsistencyProof, InclusionProof, RecordFilter
from expound.domain import (
    Attributions,
    Audience,
    Candidate,
    ExplainRequest,
    Explanation,
    FeatureScalar,
)
from expound.errors import FieldViolation, InvalidRequest
from expound.explainers.plan import ContentPlan
from expound.explainers.recourse import Recourse
from expound.models.manifest import ModelManifest
from expound.models.registry import ReloadReport, ServedModel, UnavailableModel
from expound.pipeline.explain import MAX_FEATURES
from expound.pipeline.planned import plan_of, stored_plan
from expound.times import format_utc, parse_utc
from expound.v1 import explain_pb2 as pb
from expound.wire import feature_from_pb, feature_to_pb, fill_feature_pb

# Unspecified stays unspecified: the pipeline resolves it, and the record keeps both.
_AUDIENCES: dict[int, Audience | None] = {
    pb.AUDIENCE_UNSPECIFIED: None,
    pb.APPLICANT: Audience.APPLICANT,
    pb.ANALYST: Audience.ANALYST,
    pb.COMPLIANCE: Audience.COMPLIANCE,
}


def explain_request_from_pb(message: pb.ExplainRequest) -> ExplainRequest:
    """Converts an ExplainRequest; unset feature values and unknown audiences are violations."""
    if len(message.features) > MAX_FEATURES:
        # Refused before anything is built per feature: 10,000 of them make no useful answer.
        raise InvalidRequest(
            "invalid request", [FieldViolation("features", f"more than {MAX_FEATURES} entries")]
        )
    violations: list[FieldViolation] = []
    features: dict[str, FeatureScalar] = {}
    for name, value in message.features.items():
        try:
            features[name] = feature_from_pb(value)
        except ValueError:
            violations.append(FieldViolation(f"features[{name[:64]}]", "value not set"))
    if message.audience not in _AUDIENCES:
        violations.append(FieldViolation("audience", f"unknown audience {message.audience}"))
    if violations:
        raise InvalidRequest("invalid request", violations)
    return ExplainRequest(
        model_id=message.model_id,
        features=features,
        question=message.question,
        audience=_AUDIENCES[message.audience],
        decision_id=message.decision_id,
        idempotency_key=message.idempotency_key,
        num_candidates=message.num_candidates,
        drafting_seed=message.seed,
    )


def _timestamp(rfc3339: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(parse_utc(rfc3339))
    return stamp


# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799


def rfc3339_from_pb(stamp: timestamp_pb2.Timestamp, field_name: str) -> str:
    """A wire timestamp as the archive's RFC 3339 text ("" when unset).

    Raises:
        InvalidRequest: Naming ``field_name`` when the timestamp is outside the range
            google.protobuf.Timestamp allows (seconds in years 1 to 9999, nanos 0 to 999,999,999).
    """
    if stamp.seconds == 0 and stamp.nanos == 0:
        return ""
    if not MIN_TIMESTAMP_SECONDS <= stamp.seconds <= MAX_TIMESTAMP_SECONDS:
        raise InvalidRequest(
            f"{field_name} out of range",
            [FieldViolation(field_name, "seconds must be within years 0001 to 9999")],
        )
    if not 0 <= stamp.nanos <= 999_999_999:
        raise InvalidRequest(
            f"{field_name} out of range",
            [FieldViolation(field_name, "nanos must be within 0 to 999999999")],
        )
    return format_utc(stamp.ToDatetime(tzinfo=UTC))


def _candidate_to_pb(candidate: Candidate) -> pb.Candidate:
    return pb.Candidate(
        text=candidate.text,
        rank=candidate.rank,
        deterministic=candidate.deterministic,
        faithful=candidate.faithful,
        scores=candidate.scores,
        violations=candidate.violations,
        generator=candidate.generator,
    )


def _attributions_to_pb(attributions: Attributions) -> pb.Attributions:
    message = pb.Attributions(
        base_value=attributions.base_value,
        model_output=attributions.model_output,
        units=attributions.units,
        algorithm=attributions.algorithm,
        library_version=attributions.library_version,
        background_sha256=attributions.background_sha256,
        seed=attributions.sampling_seed,
        additivity_residual=attributions.additivity_residual,
    )
    # Each item added and filled in place: a third of the cost of building and copying.
    add = message.items.add
    for item in attributions.items:
        added = add(
            feature=item.feature,
            description=item.description,
            contribution=item.contribution,
            rank=item.rank,
        )
        fill_feature_pb(added.value, item.value)
    return message


def _recourse_to_pb(recourse: Recourse) -> pb.Recourse:
    return pb.Recourse(
        method=recourse.method,
        searched_features=recourse.searched_features,
        exhaustive=recourse.exhaustive,
        rows_scored=recourse.rows_scored,
        counterfactuals=[
            pb.Counterfactual(
                changes=[
                    pb.FeatureChange(
                        feature=c.feature,
                        before=feature_to_pb(c.before),
                        after=feature_to_pb(c.after),
                    )
                    for c in counterfactual.changes
                ],
                score=counterfactual.score,
                flips=counterfactual.flips,
                distance=counterfactual.distance,
            )
            for counterfactual in recourse.counterfactuals
        ],
        elapsed_ms=recourse.elapsed_ms,
    )


def plan_to_pb(plan: ContentPlan) -> pb.ContentPlan:
    """Converts a content plan (facts, context and verified recourse) to its message."""
    message = pb.ContentPlan(version=plan.version, attribution_method=plan.attribution_method)
    for f in plan.factors:
        factor = message.factors.add(
            feature=f.feature,
            role=f.role,
            direction=f.direction,
            contribution=f.contribution,
            rank=f.rank,
            share=f.share,
            share_words=f.share_words or "",
            percentile=f.percentile,
        )
        fill_feature_pb(factor.value, f.value)
        fill_feature_pb(factor.typical_favourable, f.typical_favourable)
    if plan.reference is not None:
        reference = plan.reference
        message.reference.CopyFrom(
            pb.ReferenceSample(
                sample=reference.sample,
                sha256=reference.sha256,
                rows=reference.rows,
                favourable_share=reference.favourable_share,
                mean_score=reference.mean_score,
            )
        )
    if plan.recourse is not None:
        message.recourse.CopyFrom(_recourse_to_pb(plan.recourse))
    return message


def explanation_to_pb(
    explanation: Explanation, archived: bool = True, plan: ContentPlan | None = None
) -> pb.ExplainResponse:
    """Converts the pipeline's answer to an ExplainResponse (``archived``: False for a
    what-if answer, which has no record). ``plan``: the content plan, when the answer
    does not carry it itself (a record read back from the archive)."""
    prediction = explanation.prediction
    plan = plan or plan_of(explanation)
    return pb.ExplainResponse(
        record_id=explanation.record_id,
        model_id=explanation.model_id,
        decision_id=explanation.decision_id,
        prediction=pb.Prediction(
            score=prediction.score,
            score_meaning=prediction.score_meaning,
            threshold=prediction.threshold,
            decision=prediction.decision,
            adverse=prediction.adverse,
        ),
        attributions=_attributions_to_pb(explanation.attributions),
        principal_reasons=[
            pb.PrincipalReason(
                rank=r.rank,
                code=r.code,
                text=r.text,
                neutral_text=r.neutral_text,
                features=r.features,
                contribution=r.contribution,
            )
            for r in explanation.principal_reasons
        ],
        candidates=[_candidate_to_pb(c) for c in explanation.candidates],
        selected=_candidate_to_pb(explanation.selected),
        fallback=explanation.fallback,
        fallback_reason=explanation.fallback_reason,
        timings=[pb.StageTiming(stage=k, millis=v) for k, v in explanation.timings_ms.items()],
        created_at=_timestamp(explanation.created_at),
        archived=archived,
        plan=plan_to_pb(plan) if plan is not None else None,
    )


def checkpoint_to_pb(checkpoint: Checkpoint) -> pb.SignedCheckpoint:
    """A signed checkpoint, field for field, with its C2SP signed note."""
    return pb.SignedCheckpoint(
        log_id=checkpoint.log_id,
        size=checkpoint.size,
        root_hash=checkpoint.root_hash,
        timestamp=checkpoint.timestamp,
        signature=checkpoint.signature,
        key_id=checkpoint.key_id,
        note=checkpoint.note() if checkpoint.key_id else "",
    )


def event_to_pb(event: StoredRecord) -> pb.RecordEvent:
    """A hold, release or tombstone as the log holds it."""
    body = event.body()
    record_id = body.get("target_record_id") or body.get("expired_record_id") or ""
    return pb.RecordEvent(
        seq=event.seq,
        event_id=event.record_id,
        kind=event.kind,
        record_id=str(record_id),
        actor=event.principal,
        reason=str(body.get("reason", "")),
        created_at=event.created_at,
        target_seq=event.target_seq or 0,
        hold_event_id=str(body.get("hold_record_id", "")),
        canonical_json=event.canonical.decode("utf-8"),
    )


def access_entry_to_pb(entry: AccessEntry) -> pb.AccessLogEntry:
    """One access-log entry."""
    return pb.AccessLogEntry(
        seq=entry.seq,
        at=entry.at,
        principal=entry.principal,
        rpc=entry.rpc,
        request_id=entry.request_id,
        record_ids=list(entry.record_ids),
    )


def inclusion_proof_to_pb(proof: InclusionProof) -> pb.InclusionProof:
    """A record's inclusion proof."""
    return pb.InclusionProof(
        leaf_index=proof.leaf_index,
        tree_size=proof.checkpoint.size,
        leaf_hash=proof.leaf_hash,
        audit_path=proof.audit_path,
        checkpoint=checkpoint_to_pb(proof.checkpoint),
    )


def consistency_proof_to_pb(proof: ConsistencyProof) -> pb.ConsistencyProof:
    """A consistency proof between two checkpoints."""
    message = pb.ConsistencyProof(new_checkpoint=checkpoint_to_pb(proof.new), proof=proof.path)
    if proof.old is not None:
        message.old_checkpoint.CopyFrom(checkpoint_to_pb(proof.old))
    return message


def record_to_pb(record: StoredRecord, proof: InclusionProof | None = None) -> pb.Record:
    """Converts an archived record, with its canonical text byte for byte."""
    message = pb.Record(
        record_id=record.record_id,
        model_id=record.model_id,
        decision_id=record.decision_id,
        created_at=_timestamp(record.created_at),
        sha256=record.sha256,
        canonical_json=record.canonical.decode("utf-8"),
        seq=record.seq,
        kind=record.kind,
        retain_until=record.retain_until,
        legal_hold=record.legal_hold,
        expired=record.expired,
        principal=record.principal,
    )
    if record.kind == KIND_RECORD and not record.expired:
        response = explanation_to_pb(record.explanation(), plan=stored_plan(record))
        message.response.CopyFrom(response)
    if proof is not None:
        message.proof.CopyFrom(inclusion_proof_to_pb(proof))
    return message


def summary_to_pb(record: StoredRecord) -> pb.RecordSummary:
    """A record's listing line."""
    return pb.RecordSummary(
        record_id=record.record_id,
        model_id=record.model_id,
        decision_id=record.decision_id,
        created_at=_timestamp(record.created_at),
        decision=record.decision,
        sha256=record.sha256,
    )


def record_filter_from_pb(message: pb.ListRecordsRequest) -> RecordFilter:
    """The filter of a ListRecords request."""
    return RecordFilter(
        model_id=message.model_id,
        decision_id=message.decision_id,
        since=rfc3339_from_pb(message.since, "since"),
        until=rfc3339_from_pb(message.until, "until"),
    )


def model_status_to_pb(model: ServedModel | UnavailableModel) -> pb.ModelInfo:
    """A served model's public description, or an unavailable one's reason."""
    if isinstance(model, UnavailableModel):
        return pb.ModelInfo(
            model_id=model.model_id, available=False, unavailable_reason=model.reason
        )
    return model_to_pb(model.manifest, model.explainer.algorithm)


def reload_report_to_pb(report: ReloadReport) -> pb.ReloadModelsResponse:
    """What a reload changed."""
    return pb.ReloadModelsResponse(
        added=report.added,
        changed=report.changed,
        removed=report.removed,
        unchanged=report.unchanged,
        unavailable=[model_status_to_pb(m) for m in report.unavailable],
    )


def model_to_pb(manifest: ModelManifest, explainer: str) -> pb.ModelInfo:
    """A served model's public description."""
    info = pb.ModelInfo(
        available=True,
        model_id=manifest.model_id,
        version=manifest.version,
        title=manifest.title,
        kind=manifest.kind,
        artifact_sha256=manifest.artifact_sha256,
        score_meaning=manifest.score_meaning,
        threshold=manifest.decision.threshold,
        adverse_when=manifest.decision.describe(),
        explainer=explainer,
        units=manifest.units,
        reasons=[
            pb.ReasonCode(
                code=r.code, text=r.text, neutral_text=r.third_person, features=r.features
            )
            for r in manifest.reasons
        ],
    )
    for spec in manifest.features:
        feature = info.features.add(
            name=spec.name,
            type=spec.type,
            description=spec.description,
            unit=spec.unit,
            categories=spec.categories or [],
            protected=spec.protected,
            actionable=spec.actionable,
            nullable=spec.nullable,
            value_labels=[
                pb.ValueLabel(code=code, label=label) for code, label in spec.labelled_codes()
            ],
            category_descriptions=spec.category_descriptions,
        )
        if spec.minimum is not None:
            feature.minimum = spec.minimum
        if spec.maximum is not None:
            feature.maximum = spec.maximum
    return info
