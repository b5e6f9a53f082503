"""Validation of an applicant's features against a model's feature schema.

Every offending field is reported at once, named ``features[NAME]``, so a caller can fix
a request in one round trip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from expound.domain import FeatureScalar
from expound.errors import FieldViolation
from expound.models.manifest import FeatureSpec, ModelManifest

MAX_STRING_CHARS = 200


def _check_value(spec: FeatureSpec, value: FeatureScalar) -> str | None:
    """Returns why ``value`` is not acceptable for ``spec``, or None."""
    if value is None:
        return None if spec.nullable else "must not be null"
    if spec.type == "category":
        if not isinstance(value, str):
            return f"must be a string, one of {spec.categories}"
        if len(value) > MAX_STRING_CHARS or value not in (spec.categories or []):
            return f"unknown category; allowed: {spec.categories}"
        return None
    if spec.type == "bool":
        return None if isinstance(value, bool) else "must be a boolean"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number ({spec.type})"
    number = float(value)
    if not math.isfinite(number):
        return "must be a finite number"
    if spec.type == "integer" and not number.is_integer():
        return "must be a whole number"
    if spec.minimum is not None and number < spec.minimum:
        return f"must be at least {spec.minimum:g}"
    if spec.maximum is not None and number > spec.maximum:
        return f"must be at most {spec.maximum:g}"
    return None


def feature_violations(
    manifest: ModelManifest, features: Mapping[str, FeatureScalar]
) -> list[FieldViolation]:
    """Lists every missing, extra, ill-typed or out-of-range feature."""
    violations: list[FieldViolation] = []
    known = {spec.name for spec in manifest.features}
    for spec in manifest.features:
        if spec.name not in features:
            violations.append(
                FieldViolation(f"features[{spec.name}]", "required feature is missing")
            )
            continue
        problem = _check_value(spec, features[spec.name])
        if problem is not None:
            violations.append(FieldViolation(f"features[{spec.name}]", problem))
    for name in sorted(set(features) - known):
        shown = name if len(name) <= 64 else name[:64] + "..."
        violations.append(
            FieldViolation(f"features[{shown}]", f"not a feature of model {manifest.model_id}")
        )
    return violations
