"""``expound models check``: everything the server would check, before it serves a model.

It loads the directory exactly as the registry does (:func:`expound.models.registry.serve_model`:
TODOs, schema, hashes, artifact, explainer warm-up), lists every TODO left, and, given a data
sample, validates each row as a request would be, explains it through the service's own
decision chain (:func:`expound.explainers.decision.decide`, additivity checked on every row),
and reports the decisions, agreeing with a target column when one is named.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from expound.domain import FeatureScalar
from expound.errors import AttributionError, ModelIntegrityError
from expound.explainers.decision import decide
from expound.models.importing import artifact_categories, feature_value
from expound.models.manifest import FeatureSpec
from expound.models.registry import MANIFEST, ExplainerFactory, ServedModel, serve_model
from expound.models.stored_categories import StoredCategories, category_code
from expound.models.todos import todo_fields
from expound.models.validation import feature_violations

# Row problems listed one by one up to this many; the rest are counted.
MAX_LISTED = 20
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


@dataclass
class CheckReport:
    """What a check found: failures make it fail; notes are what passed, with figures."""

    directory: Path
    failures: list[str] = field(default_factory=list)
    todos: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed and no TODO is left."""
        return not self.failures and not self.todos

    def render(self) -> str:
        """The report as a person reads it."""
        lines = [f"model directory {self.directory}: {'OK' if self.ok else 'FAILED'}"]
        lines += [f"  ok    {note}" for note in self.notes]
        lines += [f"  TODO  {path}" for path in self.todos]
        lines += [f"  FAIL  {failure}" for failure in self.failures]
        return "\n".join(lines)


def _cell(spec: FeatureSpec, text: str) -> FeatureScalar:
    """A CSV cell as a request would carry it; validation judges what comes out."""
    if text == "":
        return None
    if spec.type in {"number", "integer"}:
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if spec.type == "integer" and number.is_integer() else number
    if spec.type == "bool" and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    return text


def _listed(report: CheckReport, problems: list[str], what: str) -> None:
    report.failures += problems[:MAX_LISTED]
    if len(problems) > MAX_LISTED:
        report.failures.append(f"... and {len(problems) - MAX_LISTED} more {what}")


def _uses_model_values(
    specs: Sequence[FeatureSpec], rows: Sequence[Mapping[str, str]], stored: StoredCategories
) -> bool:
    """Whether a category cell of ``rows`` is one of the model's own values (a code, or a
    value the artifact stores) and not a category id: the sample is the model's input."""
    for spec in specs:
        column = spec.columns()[0]
        if spec.type != "category" or spec.onehot_columns is not None or column not in rows[0]:
            continue
        ids = set(spec.categories or [])
        own = {str(v) for v in [*(spec.codes or []), *stored.get(column, [])]} - ids
        if any(row[column] in own for row in rows):
            return True
    return False


def _sample_requests(
    model: ServedModel, sample: Path, rows: Sequence[Mapping[str, str]]
) -> list[dict[str, FeatureScalar] | str] | str:
    """Each row as a request, or why it cannot be one; or why the sample cannot be read.

    A sample is read in either form: a request's (a column per feature name, category ids)
    or the model's input, as ``expound models import`` took it (the model's own columns
    and category values: what the team trained on), turned into requests as the import
    turned its sample into the background.
    """
    specs = model.manifest.features
    header = set(rows[0])
    columns = model.manifest.model_columns()
    try:
        stored = artifact_categories(model.directory / model.manifest.artifact)
    except ValueError:  # lists the import could not pair either: no stored values
        stored = {}
    # An import names features after their columns, so the two forms may share a header:
    # the category cells tell them apart (ids, or the model's own values).
    if {spec.name for spec in specs} <= header and not (
        set(columns) <= header and _uses_model_values(specs, rows, stored)
    ):
        return [{spec.name: _cell(spec, row[spec.name]) for spec in specs} for row in rows]
    if not set(columns) <= header:
        missing = sorted({spec.name for spec in specs} - header)
        return (
            f"sample has no column for feature(s) {missing}, nor every one of the model's "
            f"own columns {columns}"
        )
    # Read as the import reads its sample, each column typed by pandas.
    frame = pd.read_csv(sample)
    requests: list[dict[str, FeatureScalar] | str] = []
    for record in frame.to_dict("records"):
        try:
            for column, values in stored.items():
                cell = record[column]
                if not pd.isna(cell):
                    by_index = not isinstance(cell, str) and all(isinstance(v, str) for v in values)
                    try:
                        record[column] = category_code(cell, values, by_index)
                    except ValueError as exc:
                        raise ValueError(f"{column} {exc}") from exc
            requests.append({spec.name: feature_value(spec, record) for spec in specs})
        except ValueError as exc:
            requests.append(str(exc))
    return requests


def _check_sample(
    report: CheckReport,
    model: ServedModel,
    requests: Sequence[dict[str, FeatureScalar] | str],
    target: str | None,
    outcomes: Sequence[str] | None,
    adverse_value: str,
    tolerance: float,
) -> None:
    invalid: list[str] = []
    unexplained: list[str] = []
    adverse = agreed = explained = 0
    worst_residual = 0.0
    for number, features in enumerate(requests, start=2):  # line 1 is the header
        if isinstance(features, str):
            invalid.append(f"line {number}: {features}")
            continue
        violations = feature_violations(model.manifest, features)
        if violations:
            invalid += [f"line {number}: {v.field}: {v.description}" for v in violations]
            continue
        try:
            decision = decide(model, features, tolerance)
        except AttributionError as exc:
            unexplained.append(f"line {number}: {exc.message}")
            continue
        explained += 1
        adverse += decision.prediction.adverse
        worst_residual = max(worst_residual, abs(decision.attributions.additivity_residual))
        if outcomes is not None:
            agreed += decision.prediction.adverse == (outcomes[number - 2] == adverse_value)
    _listed(report, invalid, "invalid values")
    _listed(report, unexplained, "rows not explained")
    report.notes.append(
        f"sample: {explained} of {len(requests)} row(s) explained, additivity holds on each "
        # The tolerance the service applies: a library that computes in float32 (XGBoost)
        # is held to its own precision, as on every call (explainers.base.attribute).
        f"(largest residual {worst_residual:.2g}, tolerance "
        f"{max(tolerance, model.scorer.output_precision):g}); "
        f"{adverse} {model.manifest.decision.adverse_label}, "
        f"{explained - adverse} {model.manifest.decision.favourable_label}"
    )
    if outcomes is not None and explained:
        report.notes.append(
            f"decision agreement with {target} == {adverse_value!r} as adverse: "
            f"{agreed}/{explained} ({agreed / explained:.1%})"
        )


def check_model_directory(
    directory: Path,
    build_explainer: ExplainerFactory,
    sample: Path | None = None,
    target: str | None = None,
    adverse_value: str = "1",
    tolerance: float = 1e-6,
) -> CheckReport:
    """Checks one model directory as the server would, and its sample if given.

    Args:
        directory: the model directory.
        build_explainer: the explainer factory the server uses.
        sample: a CSV with one column per feature (by feature name), values as a request
            carries them, or the model's input as ``models import`` takes it (the model's
            columns, its own category values); other columns are ignored.
        target: a column of ``sample`` holding the actual outcome.
        adverse_value: the ``target`` value that means the adverse outcome.
        tolerance: the additivity tolerance (the server's ``additivity_tolerance``).
    """
    report = CheckReport(directory)
    # An unreadable manifest is reported by the load below, which reads the same file.
    with contextlib.suppress(OSError, ValueError):
        report.todos = todo_fields(json.loads((directory / MANIFEST).read_text()))
    try:
        model = serve_model(directory, build_explainer)
    except ModelIntegrityError as exc:
        report.failures.append(exc.message)
        return report
    manifest = model.manifest
    report.notes.append(
        f"loads as the server loads it: {manifest.model_id} {manifest.version} "
        f"({manifest.kind}, explainer {model.explainer.algorithm}, "
        f"{len(manifest.features)} features, artifact sha256 {manifest.artifact_sha256[:12]}...)"
    )
    if sample is not None:
        try:
            with sample.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            report.failures.append(f"cannot read sample {sample}: {exc}")
            return report
        if not rows:
            report.failures.append(f"sample {sample} has no rows")
            return report
        if target is not None and target not in rows[0]:
            report.failures.append(f"sample has no target column {target!r}")
            return report
        requests = _sample_requests(model, sample, rows)
        if isinstance(requests, str):
            report.failures.append(requests)
            return report
        outcomes = [row[target] for row in rows] if target is not None else None
        _check_sample(report, model, requests, target, outcomes, adverse_value, tolerance)
    return report
