"""The model manifest: what a model takes, what its score means, how to explain it.

A model directory holds ``manifest.json`` next to the artifact and the SHAP background
set. The manifest is the single source of the feature schema, the decision rule and the
reason table; ``README.md`` documents every field.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FeatureType = Literal["number", "integer", "category", "bool"]
ModelKind = Literal["lightgbm", "sklearn"]
ExplainerKind = Literal["tree", "linear", "sampling"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Strict):
    """One input feature as the applicant's data provides it (before any encoding)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: FeatureType
    description: str = Field(min_length=3)
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    categories: list[str] | None = None
    category_descriptions: dict[str, str] = Field(default_factory=dict)
    protected: bool = False
    actionable: bool = False
    nullable: bool = False
    aliases: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _categories_match_type(self) -> FeatureSpec:
        if (self.type == "category") != bool(self.categories):
            raise ValueError(
                f"{self.name}: categories are required for, and only for, type 'category'"
            )
        return self


class ReasonEntry(_Strict):
    """A principal-reason code for a feature or a group of features."""

    code: str = Field(pattern=r"^[A-Z0-9]{2,8}$")
    text: str = Field(min_length=5)
    features: list[str] = Field(min_length=1)


class DecisionRule(_Strict):
    """How a score becomes a decision."""

    threshold: float = Field(gt=0, lt=1)
    adverse_when: Literal["score_at_or_above"] = "score_at_or_above"
    adverse_label: str = "decline"
    favourable_label: str = "approve"


class ModelManifest(_Strict):
    """Everything expound needs to load, validate and explain one model."""

    model_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: str
    title: str
    kind: ModelKind
    artifact: str
    artifact_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    explainer: ExplainerKind
    score_meaning: str
    units: str
    decision: DecisionRule
    features: list[FeatureSpec] = Field(min_length=1)
    reasons: list[ReasonEntry] = Field(min_length=1)
    background: str
    background_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    sampling_seed: int = 20240611
    sampling_evaluations: int = Field(default=2000, ge=100)
    training: dict[str, str | int | float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _reasons_cover_features(self) -> ModelManifest:
        names = {f.name for f in self.features}
        if len(names) != len(self.features):
            raise ValueError("feature names must be unique")
        seen: set[str] = set()
        for reason in self.reasons:
            unknown = set(reason.features) - names
            if unknown:
                raise ValueError(f"reason {reason.code} names unknown features {sorted(unknown)}")
            if seen & set(reason.features):
                raise ValueError(f"reason {reason.code} repeats a feature of another reason")
            seen |= set(reason.features)
        unprotected = {f.name for f in self.features if not f.protected}
        if unprotected - seen:
            raise ValueError(f"features without a reason code: {sorted(unprotected - seen)}")
        return self

    def feature(self, name: str) -> FeatureSpec:
        """Returns the spec of feature ``name`` (KeyError if unknown)."""
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(name)
