import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Audience(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIENCE_UNSPECIFIED: _ClassVar[Audience]
    APPLICANT: _ClassVar[Audience]
    ANALYST: _ClassVar[Audience]
    COMPLIANCE: _ClassVar[Audience]
AUDIENCE_UNSPECIFIED: Audience
APPLICANT: Audience
ANALYST: Audience
COMPLIANCE: Audience

class FeatureValue(_message.Message):
    __slots__ = ("number", "string", "bool", "null")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STRING_FIELD_NUMBER: _ClassVar[int]
    BOOL_FIELD_NUMBER: _ClassVar[int]
    NULL_FIELD_NUMBER: _ClassVar[int]
    number: float
    string: str
    bool: bool
    null: _struct_pb2.NullValue
    def __init__(self, number: _Optional[float] = ..., string: _Optional[str] = ..., bool: _Optional[bool] = ..., null: _Optional[_Union[_struct_pb2.NullValue, str]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("model_id", "features", "question", "audience", "decision_id", "idempotency_key", "num_candidates", "seed", "what_if")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FeatureValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FeatureValue, _Mapping]] = ...) -> None: ...
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    NUM_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WHAT_IF_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    features: _containers.MessageMap[str, FeatureValue]
    question: str
    audience: Audience
    decision_id: str
    idempotency_key: str
    num_candidates: int
    seed: int
    what_if: bool
    def __init__(self, model_id: _Optional[str] = ..., features: _Optional[_Mapping[str, FeatureValue]] = ..., question: _Optional[str] = ..., audience: _Optional[_Union[Audience, str]] = ..., decision_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., num_candidates: _Optional[int] = ..., seed: _Optional[int] = ..., what_if: _Optional[bool] = ...) -> None: ...

class BatchItem(_message.Message):
    __slots__ = ("item_id", "request")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    request: ExplainRequest
    def __init__(self, item_id: _Optional[str] = ..., request: _Optional[_Union[ExplainRequest, _Mapping]] = ...) -> None: ...

class BatchResult(_message.Message):
    __slots__ = ("item_id", "response", "error")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    response: ExplainResponse
    error: _status_pb2.Status
    def __init__(self, item_id: _Optional[str] = ..., response: _Optional[_Union[ExplainResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("score", "score_meaning", "threshold", "decision", "adverse")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORE_MEANING_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ADVERSE_FIELD_NUMBER: _ClassVar[int]
    score: float
    score_meaning: str
    threshold: float
    decision: str
    adverse: bool
    def __init__(self, score: _Optional[float] = ..., score_meaning: _Optional[str] = ..., threshold: _Optional[float] = ..., decision: _Optional[str] = ..., adverse: _Optional[bool] = ...) -> None: ...

class Attribution(_message.Message):
    __slots__ = ("feature", "description", "value", "contribution", "rank")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    feature: str
    description: str
    value: FeatureValue
    contribution: float
    rank: int
    def __init__(self, feature: _Optional[str] = ..., description: _Optional[str] = ..., value: _Optional[_Union[FeatureValue, _Mapping]] = ..., contribution: _Optional[float] = ..., rank: _Optional[int] = ...) -> None: ...

class Attributions(_message.Message):
    __slots__ = ("items", "base_value", "model_output", "units", "algorithm", "library_version", "background_sha256", "seed", "additivity_residual")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    BASE_VALUE_FIELD_NUMBER: _ClassVar[int]
    MODEL_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_SHA256_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ADDITIVITY_RESIDUAL_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Attribution]
    base_value: float
    model_output: float
    units: str
    algorithm: str
    library_version: str
    background_sha256: str
    seed: int
    additivity_residual: float
    def __init__(self, items: _Optional[_Iterable[_Union[Attribution, _Mapping]]] = ..., base_value: _Optional[float] = ..., model_output: _Optional[float] = ..., units: _Optional[str] = ..., algorithm: _Optional[str] = ..., library_version: _Optional[str] = ..., background_sha256: _Optional[str] = ..., seed: _Optional[int] = ..., additivity_residual: _Optional[float] = ...) -> None: ...

class PrincipalReason(_message.Message):
    __slots__ = ("rank", "code", "text", "features", "contribution", "neutral_text")
    RANK_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    NEUTRAL_TEXT_FIELD_NUMBER: _ClassVar[int]
    rank: int
    code: str
    text: str
    features: _containers.RepeatedScalarFieldContainer[str]
    contribution: float
    neutral_text: str
    def __init__(self, rank: _Optional[int] = ..., code: _Optional[str] = ..., text: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., contribution: _Optional[float] = ..., neutral_text: _Optional[str] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("text", "rank", "deterministic", "faithful", "scores", "violations", "generator")
    class ScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TEXT_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    DETERMINISTIC_FIELD_NUMBER: _ClassVar[int]
    FAITHFUL_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    text: str
    rank: int
    deterministic: bool
    faithful: bool
    scores: _containers.ScalarMap[str, float]
    violations: _containers.RepeatedScalarFieldContainer[str]
    generator: str
    def __init__(self, text: _Optional[str] = ..., rank: _Optional[int] = ..., deterministic: _Optional[bool] = ..., faithful: _Optional[bool] = ..., scores: _Optional[_Mapping[str, float]] = ..., violations: _Optional[_Iterable[str]] = ..., generator: _Optional[str] = ...) -> None: ...

class StageTiming(_message.Message):
    __slots__ = ("stage", "millis")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    MILLIS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    millis: float
    def __init__(self, stage: _Optional[str] = ..., millis: _Optional[float] = ...) -> None: ...

class ContentPlan(_message.Message):
    __slots__ = ("version", "factors", "attribution_method", "reference", "recourse")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FACTORS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_METHOD_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    RECOURSE_FIELD_NUMBER: _ClassVar[int]
    version: str
    factors: _containers.RepeatedCompositeFieldContainer[PlannedFactor]
    attribution_method: str
    reference: ReferenceSample
    recourse: Recourse
    def __init__(self, version: _Optional[str] = ..., factors: _Optional[_Iterable[_Union[PlannedFactor, _Mapping]]] = ..., attribution_method: _Optional[str] = ..., reference: _Optional[_Union[ReferenceSample, _Mapping]] = ..., recourse: _Optional[_Union[Recourse, _Mapping]] = ...) -> None: ...

class PlannedFactor(_message.Message):
    __slots__ = ("feature", "role", "direction", "contribution", "rank", "share", "share_words", "value", "percentile", "typical_favourable")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    SHARE_WORDS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    TYPICAL_FAVOURABLE_FIELD_NUMBER: _ClassVar[int]
    feature: str
    role: str
    direction: str
    contribution: float
    rank: int
    share: float
    share_words: str
    value: FeatureValue
    percentile: int
    typical_favourable: FeatureValue
    def __init__(self, feature: _Optional[str] = ..., role: _Optional[str] = ..., direction: _Optional[str] = ..., contribution: _Optional[float] = ..., rank: _Optional[int] = ..., share: _Optional[float] = ..., share_words: _Optional[str] = ..., value: _Optional[_Union[FeatureValue, _Mapping]] = ..., percentile: _Optional[int] = ..., typical_favourable: _Optional[_Union[FeatureValue, _Mapping]] = ...) -> None: ...

class ReferenceSample(_message.Message):
    __slots__ = ("sample", "sha256", "rows", "favourable_share", "mean_score")
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    FAVOURABLE_SHARE_FIELD_NUMBER: _ClassVar[int]
    MEAN_SCORE_FIELD_NUMBER: _ClassVar[int]
    sample: str
    sha256: str
    rows: int
    favourable_share: float
    mean_score: float
    def __init__(self, sample: _Optional[str] = ..., sha256: _Optional[str] = ..., rows: _Optional[int] = ..., favourable_share: _Optional[float] = ..., mean_score: _Optional[float] = ...) -> None: ...

class Recourse(_message.Message):
    __slots__ = ("method", "searched_features", "exhaustive", "rows_scored", "counterfactuals", "elapsed_ms")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SEARCHED_FEATURES_FIELD_NUMBER: _ClassVar[int]
    EXHAUSTIVE_FIELD_NUMBER: _ClassVar[int]
    ROWS_SCORED_FIELD_NUMBER: _ClassVar[int]
    COUNTERFACTUALS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    method: str
    searched_features: _containers.RepeatedScalarFieldContainer[str]
    exhaustive: bool
    rows_scored: int
    counterfactuals: _containers.RepeatedCompositeFieldContainer[Counterfactual]
    elapsed_ms: float
    def __init__(self, method: _Optional[str] = ..., searched_features: _Optional[_Iterable[str]] = ..., exhaustive: _Optional[bool] = ..., rows_scored: _Optional[int] = ..., counterfactuals: _Optional[_Iterable[_Union[Counterfactual, _Mapping]]] = ..., elapsed_ms: _Optional[float] = ...) -> None: ...

class Counterfactual(_message.Message):
    __slots__ = ("changes", "score", "flips", "distance")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FLIPS_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[FeatureChange]
    score: float
    flips: bool
    distance: float
    def __init__(self, changes: _Optional[_Iterable[_Union[FeatureChange, _Mapping]]] = ..., score: _Optional[float] = ..., flips: _Optional[bool] = ..., distance: _Optional[float] = ...) -> None: ...

class FeatureChange(_message.Message):
    __slots__ = ("feature", "before", "after")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    feature: str
    before: FeatureValue
    after: FeatureValue
    def __init__(self, feature: _Optional[str] = ..., before: _Optional[_Union[FeatureValue, _Mapping]] = ..., after: _Optional[_Union[FeatureValue, _Mapping]] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("record_id", "model_id", "decision_id", "prediction", "attributions", "principal_reasons", "candidates", "selected", "fallback", "fallback_reason", "timings", "created_at", "archived", "plan")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_REASONS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    SELECTED_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    model_id: str
    decision_id: str
    prediction: Prediction
    attributions: Attributions
    principal_reasons: _containers.RepeatedCompositeFieldContainer[PrincipalReason]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    selected: Candidate
    fallback: bool
    fallback_reason: str
    timings: _containers.RepeatedCompositeFieldContainer[StageTiming]
    created_at: _timestamp_pb2.Timestamp
    archived: bool
    plan: ContentPlan
    def __init__(self, record_id: _Optional[str] = ..., model_id: _Optional[str] = ..., decision_id: _Optional[str] = ..., prediction: _Optional[_Union[Prediction, _Mapping]] = ..., attributions: _Optional[_Union[Attributions, _Mapping]] = ..., principal_reasons: _Optional[_Iterable[_Union[PrincipalReason, _Mapping]]] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., selected: _Optional[_Union[Candidate, _Mapping]] = ..., fallback: _Optional[bool] = ..., fallback_reason: _Optional[str] = ..., timings: _Optional[_Iterable[_Union[StageTiming, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., archived: _Optional[bool] = ..., plan: _Optional[_Union[ContentPlan, _Mapping]] = ...) -> None: ...

class GetRecordRequest(_message.Message):
    __slots__ = ("record_id", "include_proof")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_PROOF_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    include_proof: bool
    def __init__(self, record_id: _Optional[str] = ..., include_proof: _Optional[bool] = ...) -> None: ...

class SignedCheckpoint(_message.Message):
    __slots__ = ("log_id", "size", "root_hash", "timestamp", "signature", "key_id", "note")
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    log_id: str
    size: int
    root_hash: bytes
    timestamp: str
    signature: bytes
    key_id: bytes
    note: str
    def __init__(self, log_id: _Optional[str] = ..., size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., timestamp: _Optional[str] = ..., signature: _Optional[bytes] = ..., key_id: _Optional[bytes] = ..., note: _Optional[str] = ...) -> None: ...

class InclusionProof(_message.Message):
    __slots__ = ("leaf_index", "tree_size", "leaf_hash", "audit_path", "checkpoint")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    AUDIT_PATH_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    audit_path: _containers.RepeatedScalarFieldContainer[bytes]
    checkpoint: SignedCheckpoint
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ..., audit_path: _Optional[_Iterable[bytes]] = ..., checkpoint: _Optional[_Union[SignedCheckpoint, _Mapping]] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("old_size", "new_size")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    new_size: int
    def __init__(self, old_size: _Optional[int] = ..., new_size: _Optional[int] = ...) -> None: ...

class ConsistencyProof(_message.Message):
    __slots__ = ("old_checkpoint", "new_checkpoint", "proof")
    OLD_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    NEW_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    old_checkpoint: SignedCheckpoint
    new_checkpoint: SignedCheckpoint
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, old_checkpoint: _Optional[_Union[SignedCheckpoint, _Mapping]] = ..., new_checkpoint: _Optional[_Union[SignedCheckpoint, _Mapping]] = ..., proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ("size",)
    SIZE_FIELD_NUMBER: _ClassVar[int]
    size: int
    def __init__(self, size: _Optional[int] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("record_id", "model_id", "decision_id", "created_at", "sha256", "canonical_json", "response", "proof", "seq", "kind", "retain_until", "legal_hold", "expired", "principal")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_JSON_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RETAIN_UNTIL_FIELD_NUMBER: _ClassVar[int]
    LEGAL_HOLD_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    model_id: str
    decision_id: str
    created_at: _timestamp_pb2.Timestamp
    sha256: str
    canonical_json: str
    response: ExplainResponse
    proof: InclusionProof
    seq: int
    kind: str
    retain_until: str
    legal_hold: bool
    expired: bool
    principal: str
    def __init__(self, record_id: _Optional[str] = ..., model_id: _Optional[str] = ..., decision_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sha256: _Optional[str] = ..., canonical_json: _Optional[str] = ..., response: _Optional[_Union[ExplainResponse, _Mapping]] = ..., proof: _Optional[_Union[InclusionProof, _Mapping]] = ..., seq: _Optional[int] = ..., kind: _Optional[str] = ..., retain_until: _Optional[str] = ..., legal_hold: _Optional[bool] = ..., expired: _Optional[bool] = ..., principal: _Optional[str] = ...) -> None: ...

class ListRecordsRequest(_message.Message):
    __slots__ = ("model_id", "decision_id", "since", "until", "page_size", "page_token")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    decision_id: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, model_id: _Optional[str] = ..., decision_id: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class RecordSummary(_message.Message):
    __slots__ = ("record_id", "model_id", "decision_id", "created_at", "decision", "sha256")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    model_id: str
    decision_id: str
    created_at: _timestamp_pb2.Timestamp
    decision: str
    sha256: str
    def __init__(self, record_id: _Optional[str] = ..., model_id: _Optional[str] = ..., decision_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decision: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class ListRecordsResponse(_message.Message):
    __slots__ = ("records", "next_page_token")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[RecordSummary]
    next_page_token: str
    def __init__(self, records: _Optional[_Iterable[_Union[RecordSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class ReloadModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadModelsResponse(_message.Message):
    __slots__ = ("added", "changed", "removed", "unchanged", "unavailable")
    ADDED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_FIELD_NUMBER: _ClassVar[int]
    added: _containers.RepeatedScalarFieldContainer[str]
    changed: _containers.RepeatedScalarFieldContainer[str]
    removed: _containers.RepeatedScalarFieldContainer[str]
    unchanged: _containers.RepeatedScalarFieldContainer[str]
    unavailable: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, added: _Optional[_Iterable[str]] = ..., changed: _Optional[_Iterable[str]] = ..., removed: _Optional[_Iterable[str]] = ..., unchanged: _Optional[_Iterable[str]] = ..., unavailable: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class FeatureSchema(_message.Message):
    __slots__ = ("name", "type", "description", "unit", "minimum", "maximum", "categories", "protected", "actionable", "nullable", "value_labels", "category_descriptions")
    class CategoryDescriptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_FIELD_NUMBER: _ClassVar[int]
    ACTIONABLE_FIELD_NUMBER: _ClassVar[int]
    NULLABLE_FIELD_NUMBER: _ClassVar[int]
    VALUE_LABELS_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_DESCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    description: str
    unit: str
    minimum: float
    maximum: float
    categories: _containers.RepeatedScalarFieldContainer[str]
    protected: bool
    actionable: bool
    nullable: bool
    value_labels: _containers.RepeatedCompositeFieldContainer[ValueLabel]
    category_descriptions: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., description: _Optional[str] = ..., unit: _Optional[str] = ..., minimum: _Optional[float] = ..., maximum: _Optional[float] = ..., categories: _Optional[_Iterable[str]] = ..., protected: _Optional[bool] = ..., actionable: _Optional[bool] = ..., nullable: _Optional[bool] = ..., value_labels: _Optional[_Iterable[_Union[ValueLabel, _Mapping]]] = ..., category_descriptions: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ValueLabel(_message.Message):
    __slots__ = ("code", "label")
    CODE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    code: int
    label: str
    def __init__(self, code: _Optional[int] = ..., label: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("model_id", "version", "title", "kind", "artifact_sha256", "score_meaning", "threshold", "adverse_when", "explainer", "units", "features", "available", "unavailable_reason", "reasons")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_SHA256_FIELD_NUMBER: _ClassVar[int]
    SCORE_MEANING_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ADVERSE_WHEN_FIELD_NUMBER: _ClassVar[int]
    EXPLAINER_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    version: str
    title: str
    kind: str
    artifact_sha256: str
    score_meaning: str
    threshold: float
    adverse_when: str
    explainer: str
    units: str
    features: _containers.RepeatedCompositeFieldContainer[FeatureSchema]
    available: bool
    unavailable_reason: str
    reasons: _containers.RepeatedCompositeFieldContainer[ReasonCode]
    def __init__(self, model_id: _Optional[str] = ..., version: _Optional[str] = ..., title: _Optional[str] = ..., kind: _Optional[str] = ..., artifact_sha256: _Optional[str] = ..., score_meaning: _Optional[str] = ..., threshold: _Optional[float] = ..., adverse_when: _Optional[str] = ..., explainer: _Optional[str] = ..., units: _Optional[str] = ..., features: _Optional[_Iterable[_Union[FeatureSchema, _Mapping]]] = ..., available: _Optional[bool] = ..., unavailable_reason: _Optional[str] = ..., reasons: _Optional[_Iterable[_Union[ReasonCode, _Mapping]]] = ...) -> None: ...

class ReasonCode(_message.Message):
    __slots__ = ("code", "text", "neutral_text", "features")
    CODE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NEUTRAL_TEXT_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    code: str
    text: str
    neutral_text: str
    features: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, code: _Optional[str] = ..., text: _Optional[str] = ..., neutral_text: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ...) -> None: ...

class PlaceHoldRequest(_message.Message):
    __slots__ = ("record_id", "reason")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    reason: str
    def __init__(self, record_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReleaseHoldRequest(_message.Message):
    __slots__ = ("record_id", "reason")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    reason: str
    def __init__(self, record_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RecordEvent(_message.Message):
    __slots__ = ("seq", "event_id", "kind", "record_id", "actor", "reason", "created_at", "target_seq", "hold_event_id", "canonical_json")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TARGET_SEQ_FIELD_NUMBER: _ClassVar[int]
    HOLD_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_JSON_FIELD_NUMBER: _ClassVar[int]
    seq: int
    event_id: str
    kind: str
    record_id: str
    actor: str
    reason: str
    created_at: str
    target_seq: int
    hold_event_id: str
    canonical_json: str
    def __init__(self, seq: _Optional[int] = ..., event_id: _Optional[str] = ..., kind: _Optional[str] = ..., record_id: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., created_at: _Optional[str] = ..., target_seq: _Optional[int] = ..., hold_event_id: _Optional[str] = ..., canonical_json: _Optional[str] = ...) -> None: ...

class ExpireRecordsRequest(_message.Message):
    __slots__ = ("record_ids", "reason")
    RECORD_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    record_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, record_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ExpireRecordsResponse(_message.Message):
    __slots__ = ("tombstones",)
    TOMBSTONES_FIELD_NUMBER: _ClassVar[int]
    tombstones: _containers.RepeatedCompositeFieldContainer[RecordEvent]
    def __init__(self, tombstones: _Optional[_Iterable[_Union[RecordEvent, _Mapping]]] = ...) -> None: ...

class GetRecordHistoryRequest(_message.Message):
    __slots__ = ("record_id",)
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    def __init__(self, record_id: _Optional[str] = ...) -> None: ...

class RecordHistory(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[RecordEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[RecordEvent, _Mapping]]] = ...) -> None: ...

class ListAccessLogRequest(_message.Message):
    __slots__ = ("after_seq", "page_size", "record_id")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    page_size: int
    record_id: str
    def __init__(self, after_seq: _Optional[int] = ..., page_size: _Optional[int] = ..., record_id: _Optional[str] = ...) -> None: ...

class AccessLogEntry(_message.Message):
    __slots__ = ("seq", "at", "principal", "rpc", "request_id", "record_ids")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_IDS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    at: str
    principal: str
    rpc: str
    request_id: str
    record_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, seq: _Optional[int] = ..., at: _Optional[str] = ..., principal: _Optional[str] = ..., rpc: _Optional[str] = ..., request_id: _Optional[str] = ..., record_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListAccessLogResponse(_message.Message):
    __slots__ = ("entries", "next_after_seq")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AccessLogEntry]
    next_after_seq: int
    def __init__(self, entries: _Optional[_Iterable[_Union[AccessLogEntry, _Mapping]]] = ..., next_after_seq: _Optional[int] = ...) -> None: ...
