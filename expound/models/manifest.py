"""The model manifest: what a model takes, what its score means, how to explain it.

A model directory holds ``manifest.json`` next to the artifact and the SHAP background
set. The manifest is the single source of the feature schema, the decision rule and the
reason table; ``README.md`` documents every field.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

FeatureType = Literal["number", "integer", "category", "bool"]
ModelKind = Literal["lightgbm", "xgboost", "catboost", "sklearn"]
ExplainerKind = Literal["tree", "linear", "sampling"]
ScoreSpace = Literal["log_odds", "probability"]
CategoryCode = int | str
# The most values one feature's recourse grid may hold (a search scores pairs of them).
MAX_RECOURSE_POINTS = 1000
# Marks wording `expound models import` could not infer; a manifest that still holds a
# string field equal to or starting with it is not ready to serve.
TODO = "TODO"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecourseSpec(_Strict):
    """How an applicant may change one actionable feature, for counterfactual recourse.

    Numbers move on the grid ``minimum``, ``minimum + step``, ... ``maximum``; categories
    move along ``order`` (a ladder, worst to best or as the lender ranks them) one rung
    at a time. ``direction`` says which way: ``increase`` (up the grid or the ladder),
    ``decrease`` or ``either``. The normalised size of a change is the distance moved over
    the whole range (numbers) or the number of rungs over the ladder's length.
    """

    direction: Literal["increase", "decrease", "either"]
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = Field(default=None, gt=0)
    order: list[str] | None = None

    @model_validator(mode="after")
    def _grid_or_ladder(self) -> RecourseSpec:
        numeric = (self.minimum, self.maximum, self.step)
        if self.order is not None:
            if any(v is not None for v in numeric):
                raise ValueError("recourse: give order (categories) or a grid, not both")
            if len(self.order) < 2 or len(set(self.order)) != len(self.order):
                raise ValueError("recourse.order: at least two distinct categories")
        elif any(v is None for v in numeric):
            raise ValueError("recourse: a number needs minimum, maximum and step")
        elif self.maximum <= self.minimum:  # type: ignore[operator]
            raise ValueError("recourse: maximum must exceed minimum")
        return self


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
    # How the model sees a category: ``codes`` gives the value of each category (aligned
    # with ``categories``; default: its position in the list); ``onehot_columns`` names the
    # model's 0/1 column of each category instead (null for a reference category that has
    # no column of its own).
    codes: list[CategoryCode] | None = None
    onehot_columns: list[str | None] | None = None
    # The model's column for this feature when its name differs (e.g. "Age (years)").
    column: str | None = None
    # How recourse may change it (None: never changed; only actionable, unprotected
    # features may declare one).
    recourse: RecourseSpec | None = None
    # Integer codes that stand for bands, in words ({"1": "35% or more", ...}): texts state
    # the label, never the bare code, and the gate reads the label back as the value.
    value_labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _categories_match_type(self) -> FeatureSpec:
        if (self.type == "category") != bool(self.categories):
            raise ValueError(
                f"{self.name}: categories are required for, and only for, type 'category'"
            )
        count = len(self.categories or [])
        for field, values in (("codes", self.codes), ("onehot_columns", self.onehot_columns)):
            if values is None:
                continue
            if len(values) != count:
                raise ValueError(f"{self.name}.{field}: one entry per category ({count})")
            named = [v for v in values if v is not None]
            if len(set(named)) != len(named):
                raise ValueError(f"{self.name}.{field}: entries must be unique")
        if self.codes is not None and self.onehot_columns is not None:
            raise ValueError(f"{self.name}: give codes or onehot_columns, not both")
        if self.column is not None and self.onehot_columns is not None:
            raise ValueError(f"{self.name}: give column or onehot_columns, not both")
        if self.recourse is not None:
            self._check_recourse(self.recourse)
        if self.value_labels:
            self._check_value_labels(self.value_labels)
        return self

    def _check_value_labels(self, labels: dict[str, str]) -> None:
        if self.type != "integer":
            raise ValueError(f"{self.name}.value_labels: only an integer feature takes labels")
        for key, label in labels.items():
            if not re.fullmatch(r"-?(?:0|[1-9][0-9]*)", key):
                raise ValueError(f"{self.name}.value_labels: key {key!r} is not an integer")
            code = int(key)
            low = self.minimum if self.minimum is not None else float("-inf")
            high = self.maximum if self.maximum is not None else float("inf")
            if not low <= code <= high:
                raise ValueError(f"{self.name}.value_labels: {code} is outside [{low:g}, {high:g}]")
            if len(label.strip()) < 2 or label != label.strip():
                raise ValueError(f"{self.name}.value_labels[{key}]: a label of words, trimmed")
        # The gate tells values apart by their labels: two codes may not share one.
        folded = [label.lower() for label in labels.values()]
        if len(set(folded)) != len(folded):
            raise ValueError(f"{self.name}.value_labels: labels must be distinct")

    def value_label(self, value: float | str | bool | None) -> str | None:
        """The reviewed label of an integer code (None: no label for it)."""
        if not self.value_labels or isinstance(value, (bool, str)) or value is None:
            return None
        number = float(value)
        return self.value_labels.get(str(int(number))) if number.is_integer() else None

    def category_wording(self, category: str) -> str:
        """The words texts state ``category`` in: its description, else its name."""
        return self.category_descriptions.get(category, category.replace("_", " "))

    def labelled_codes(self) -> list[tuple[int, str]]:
        """The banded codes and their labels, by code ascending (empty: no labels)."""
        return sorted((int(key), label) for key, label in self.value_labels.items())

    def _check_recourse(self, recourse: RecourseSpec) -> None:
        if self.protected or not self.actionable:
            raise ValueError(
                f"{self.name}.recourse: only an actionable, unprotected feature may change"
            )
        if self.type == "bool":
            raise ValueError(f"{self.name}.recourse: a yes/no feature has no recourse grid")
        if (self.type == "category") != (recourse.order is not None):
            raise ValueError(f"{self.name}.recourse: categories take an order, numbers a grid")
        if recourse.step is not None:
            assert recourse.minimum is not None and recourse.maximum is not None
            grid = (recourse.minimum, recourse.maximum, recourse.step)
            if self.type == "integer" and not all(float(v).is_integer() for v in grid):
                raise ValueError(f"{self.name}.recourse: an integer moves on an integer grid")
            points = (recourse.maximum - recourse.minimum) / recourse.step + 1
            if points > MAX_RECOURSE_POINTS:
                raise ValueError(
                    f"{self.name}.recourse: {points:.0f} grid points; at most "
                    f"{MAX_RECOURSE_POINTS} (a coarser step)"
                )
        unknown = set(recourse.order or []) - set(self.categories or [])
        if unknown:
            raise ValueError(f"{self.name}.recourse.order: unknown categories {sorted(unknown)}")

    def code_of(self, category: str) -> CategoryCode:
        """The value the model sees for ``category`` (a column code, not one-hot)."""
        assert self.categories is not None
        index = self.categories.index(category)
        return self.codes[index] if self.codes is not None else index

    def columns(self) -> list[str]:
        """The model's input columns this feature fills, in its own order."""
        if self.onehot_columns is not None:
            return [c for c in self.onehot_columns if c is not None]
        return [self.column or self.name]


# Words that speak to the applicant: a reason worded with one needs its third-person form.
SECOND_PERSON = re.compile(r"\b(?:you|your|yours|yourself|yourselves)\b", re.IGNORECASE)


class ReasonEntry(_Strict):
    """A principal-reason code for a feature or a group of features.

    ``text`` is the reason as the applicant reads it (notices, applicant explanations) and
    may speak to them ("Status or balance of your checking account"); ``neutral_text`` is
    the same reason in the third person for compliance and analyst texts ("Status or
    balance of the applicant's checking account"). It may be left out only where ``text``
    speaks to no one already.
    """

    code: str = Field(pattern=r"^[A-Z0-9]{2,8}$")
    text: str = Field(min_length=5)
    features: list[str] = Field(min_length=1)
    neutral_text: str = ""

    @model_validator(mode="after")
    def _neutral_wording(self) -> ReasonEntry:
        if self.text.startswith(TODO) or self.neutral_text.startswith(TODO):
            return self  # unreviewed: the registry refuses it for its TODO
        if self.neutral_text:
            if len(self.neutral_text) < 5 or self.neutral_text != self.neutral_text.strip():
                raise ValueError(
                    f"reasons[{self.code}].neutral_text: at least 5 characters, trimmed"
                )
            spoken = SECOND_PERSON.search(self.neutral_text)
            if spoken is not None:
                raise ValueError(
                    f"reasons[{self.code}].neutral_text: {spoken.group(0)!r} speaks to the "
                    "applicant; compliance and analyst texts say it in the third person"
                )
            return self
        spoken = SECOND_PERSON.search(self.text)
        if spoken is not None:
            raise ValueError(
                f"reasons[{self.code}].neutral_text: required, the text speaks to the applicant "
                f"({spoken.group(0)!r}); give the reason in the third person for compliance "
                'and analyst texts (e.g. "the applicant\'s")'
            )
        return self

    @property
    def third_person(self) -> str:
        """The reason as compliance and analyst texts state it."""
        return self.neutral_text or self.text


class ScoreSpec(_Strict):
    """Which of the model's outputs is the score, and in which space it is explained.

    ``output`` is the class whose probability is the score (the column of
    ``predict_proba``; boosters and log-odds have only class 1). ``space`` is the model's
    raw output, which the attributions add up to: ``log_odds`` (boosters, linear models,
    gradient boosting; score = sigmoid(raw)) or ``probability`` (forests, single trees,
    any ``predict_proba``; score = raw).
    """

    output: int = Field(default=1, ge=0)
    space: ScoreSpace = "log_odds"


class DecisionRule(_Strict):
    """How a score becomes a decision, on either side of the threshold."""

    threshold: float = Field(gt=0, lt=1)
    adverse_when: Literal["score_at_or_above", "score_below"] = "score_at_or_above"
    adverse_label: str = "decline"
    favourable_label: str = "approve"

    @property
    def adverse_sign(self) -> float:
        """+1 when a higher raw output pushes toward the adverse outcome, else -1."""
        return 1.0 if self.adverse_when == "score_at_or_above" else -1.0

    def is_adverse(self, score: float) -> bool:
        """Whether ``score`` falls on the adverse side of the threshold."""
        if self.adverse_when == "score_at_or_above":
            return score >= self.threshold
        return score < self.threshold

    def adverse_each(self, scores: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """:meth:`is_adverse` of every score of an array at once."""
        if self.adverse_when == "score_at_or_above":
            return scores >= self.threshold
        return scores < self.threshold

    def describe(self) -> str:
        """The rule in one line, e.g. "score >= 0.5: decline"."""
        operator = ">=" if self.adverse_when == "score_at_or_above" else "<"
        return f"score {operator} {self.threshold:g}: {self.adverse_label}"


class ModelManifest(_Strict):
    """Everything expound needs to load, validate and explain one model."""

    model_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: str
    title: str
    kind: ModelKind
    artifact: str
    artifact_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    explainer: ExplainerKind
    # TreeSHAP: path-dependent (the trees' own cover counts) or interventional (against
    # the background set).
    tree_shap: Literal["path_dependent", "interventional"] = "path_dependent"
    score_meaning: str
    units: str
    score: ScoreSpec = Field(default_factory=ScoreSpec)
    decision: DecisionRule
    features: list[FeatureSpec] = Field(min_length=1)
    reasons: list[ReasonEntry] = Field(min_length=1)
    background: str
    background_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    sampling_seed: int = 20240611
    sampling_evaluations: int = Field(default=2000, ge=100)
    training: dict[str, str | int | float] = Field(default_factory=dict)
    # The model's input columns in the artifact's order (checked against the names the
    # artifact records); default: each feature's columns in feature order.
    columns: list[str] | None = None
    # skops only: the exact types beyond skops' defaults this artifact may build.
    trusted_types: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _reasons_cover_features(self) -> ModelManifest:
        names = {f.name for f in self.features}
        if len(names) != len(self.features):
            raise ValueError("feature names must be unique")
        codes = [reason.code for reason in self.reasons]
        if len(set(codes)) != len(codes):
            raise ValueError(f"reasons: codes must be unique ({sorted(codes)})")
        seen: set[str] = set()
        for reason in self.reasons:
            unknown = set(reason.features) - names
            if unknown:
                raise ValueError(f"reason {reason.code} names unknown features {sorted(unknown)}")
            if seen & set(reason.features):
                raise ValueError(f"reason {reason.code} repeats a feature of another reason")
            seen |= set(reason.features)
        # Imported here: the wording rules are written over this module's FeatureSpec.
        from expound.models.wording import wording_collisions

        collisions = wording_collisions(self.features)
        if collisions:
            raise ValueError("; ".join(collisions))
        unprotected = {f.name for f in self.features if not f.protected}
        if unprotected - seen:
            raise ValueError(f"features without a reason code: {sorted(unprotected - seen)}")
        expanded = [c for spec in self.features for c in spec.columns()]
        if len(set(expanded)) != len(expanded):
            raise ValueError("a model column is filled by two features")
        if self.columns is not None and sorted(self.columns) != sorted(expanded):
            raise ValueError(
                f"columns: {sorted(set(self.columns) ^ set(expanded))} are not the features' "
                "columns (each feature's name, or its onehot_columns)"
            )
        return self

    def model_columns(self) -> list[str]:
        """The model's input columns in the artifact's order."""
        if self.columns is not None:
            return list(self.columns)
        return [c for spec in self.features for c in spec.columns()]

    def reason(self, code: str) -> ReasonEntry:
        """Returns the reason entry of ``code`` (KeyError if unknown)."""
        for entry in self.reasons:
            if entry.code == code:
                return entry
        raise KeyError(code)

    def feature(self, name: str) -> FeatureSpec:
        """Returns the spec of feature ``name`` (KeyError if unknown)."""
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(name)
