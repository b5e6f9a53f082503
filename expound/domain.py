"""The domain objects that flow through the pipeline and into the archive.

They are pydantic models so that a record is plain, canonical JSON (never pickle) and
round-trips losslessly: ``Explanation.model_validate(record["response"])``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

FeatureScalar = float | str | bool | None
# The principal of a call nobody authenticated (authentication off, on loopback only).
ANONYMOUS = "anonymous"


class Audience(StrEnum):
    """Who the explanation is written for."""

    APPLICANT = "APPLICANT"
    ANALYST = "ANALYST"
    COMPLIANCE = "COMPLIANCE"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExplainRequest(_Frozen):
    """One decision to explain, exactly as received (converted from the wire, nothing
    filled in): the record keeps it so, and :class:`ResolvedRequest` beside it."""

    model_id: str
    features: dict[str, FeatureScalar]
    question: str = ""
    audience: Audience | None = None  # None: unspecified
    decision_id: str = ""
    idempotency_key: str = ""
    num_candidates: int = 0  # 0: the server's default
    drafting_seed: int = 0  # 0: the server's default


class ResolvedRequest(_Frozen):
    """What the service made of a request's unspecified values, as it used them."""

    audience: Audience
    num_candidates: int
    drafting_seed: int


class Prediction(_Frozen):
    """The model's score and the decision it implies."""

    score: float
    score_meaning: str
    threshold: float
    decision: str
    adverse: bool


class FeatureAttribution(_Frozen):
    """One original feature's SHAP contribution (encoded columns summed back)."""

    feature: str
    description: str
    value: FeatureScalar
    contribution: float
    rank: int


class Attributions(_Frozen):
    """SHAP attributions of one row, with what produced them."""

    items: list[FeatureAttribution]
    base_value: float
    model_output: float
    units: str
    algorithm: str
    library_version: str
    background_sha256: str
    # The SHAP sampling seed (0 for exact algorithms); records written before it had this
    # name call it "seed".
    sampling_seed: int = Field(validation_alias=AliasChoices("sampling_seed", "seed"))
    additivity_residual: float


class PrincipalReason(_Frozen):
    """An adverse-action reason: code, its two wordings, the features behind it, their
    contribution.

    ``text`` is the reason as the applicant reads it (the adverse-action notice, applicant
    texts) and may speak to them ("your checking account"); ``neutral_text`` is the same
    reason in the third person, as analysts and compliance read it ("the applicant's
    checking account"), from the model's reason table when the decision was made. Records
    written before it was kept (schema ``expound.record/v3``) hold ``text`` only and read
    back with ``neutral_text`` "".
    """

    rank: int
    code: str
    text: str
    neutral_text: str = Field(
        default="",
        description=(
            "the reason in the third person, for analysts and compliance; "
            '"" only in records written before it was kept (then only text was recorded)'
        ),
    )
    features: list[str]
    contribution: float

    @property
    def third_person(self) -> str:
        """The reason as analysts and compliance read it: ``neutral_text``, or in a record
        written before that was kept, ``text``, the only wording such a record holds."""
        return self.neutral_text or self.text


class Candidate(_Frozen):
    """One candidate explanation with its verdict and scores."""

    text: str
    rank: int
    deterministic: bool
    faithful: bool
    scores: dict[str, float] = Field(default_factory=dict)
    violations: list[str] = Field(default_factory=list)
    generator: str


class DraftRecord(_Frozen):
    """One drafted candidate as it was judged, with its judgement.

    ``text`` is the model's text, trimmed to its last complete sentence when the token
    limit cut it (``finish_reason`` "length"); ``token_logprobs`` cover every token returned
    (in jump-forward drafting, the tokens decoded at choice points). ``style`` names the
    plan its grammar followed; ``chose`` the grammar's alternatives the model took.
    """

    index: int
    text: str
    token_logprobs: list[float]
    finish_reason: str
    passed: bool
    violations: list[str]
    scores: dict[str, float]
    style: str = ""
    chose: list[str] = Field(default_factory=list)


class DraftingRecord(_Frozen):
    """What drafting ran and produced: enough to reproduce and audit it."""

    mode: str
    generator: str
    model: str
    template_id: str
    template_sha256: str
    phrase_bank_id: str = ""
    phrase_bank_sha256: str = ""
    grammar_sha256: str = ""
    sampling: dict[str, float | int | str]
    ranker: str = ""
    latency_ms: float = 0.0
    # Time waiting for an LLM slot before latency_ms (on the LLM) began; requests made.
    queue_ms: float = 0.0
    llm_requests: int = 0
    completion_tokens: int = 0
    drafts: list[DraftRecord] = Field(default_factory=list)
    error: str = ""


class Explanation(_Frozen):
    """The full answer to one Explain call, as archived and as returned."""

    record_id: str
    model_id: str
    model_version: str
    artifact_sha256: str
    decision_id: str
    audience: Audience
    prediction: Prediction
    attributions: Attributions
    principal_reasons: list[PrincipalReason]
    candidates: list[Candidate]
    selected: Candidate
    fallback: bool
    fallback_reason: str
    timings_ms: dict[str, float]
    created_at: str
    drafting: DraftingRecord | None = None
