"""`expound models import`: from a trained model and a sample of its data to a model directory.

The artifact is converted to a format the server loads safely (LightGBM text, XGBoost JSON,
CatBoost ``.cbm``, skops with the exact types it needs listed in ``trusted_types``); a
pickle is read only when the caller says it is trusted (``--trust-pickle``). The manifest is
inferred from the artifact and the sample: the model's columns and their order, types and
ranges, category codes, one-hot column groups (0/1 columns sharing a prefix, at most one set
per row), the output space and the explainer. Every piece of wording that cannot be
inferred (title, score meaning, descriptions, reason texts and their third-person forms,
which features are protected or actionable) is marked ``TODO``; the server refuses a
manifest until none is left.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from expound.domain import FeatureScalar
from expound.errors import ModelIntegrityError
from expound.models.manifest import (
    TODO,
    CategoryCode,
    DecisionRule,
    FeatureSpec,
    ModelKind,
    ModelManifest,
    ReasonEntry,
    ScoreSpec,
)
from expound.models.stored_categories import (
    StoredCategories,
    lightgbm_categories,
    to_codes,
    xgboost_categories,
)

BACKGROUND_ROWS = 100
DEFAULT_SEED = 20240611
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib"}


class ImportRefused(ModelIntegrityError):
    """The artifact or the sample cannot become a model directory (the message says why)."""


@dataclass(frozen=True)
class _Converted:
    kind: ModelKind
    artifact: str  # file name written under the output directory
    estimator: Any  # what the explainer choice and the output space are read from
    columns: list[str] | None  # what the artifact records
    categorical: list[str]  # columns the artifact itself treats as categorical
    trusted_types: list[str]
    # Category values the artifact stores per column; the model takes their indices.
    stored_categories: StoredCategories = field(default_factory=dict)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_pickle(path: Path) -> Any:
    if path.suffix == ".joblib":
        import joblib

        return joblib.load(path)
    with path.open("rb") as handle:
        return pickle.load(handle)  # the caller said --trust-pickle


def _from_object(model: Any, out: Path, source: Path) -> _Converted:
    """Converts a model object (from a trusted pickle) to a safe artifact under ``out``."""
    module = type(model).__module__.split(".")[0]
    if module == "lightgbm":
        booster = model.booster_ if hasattr(model, "booster_") else model
        booster.save_model(str(out / "model.lgb.txt"))
        return _lightgbm(out / "model.lgb.txt")
    if module == "xgboost":
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        booster.save_model(str(out / "model.xgb.json"))
        return _xgboost(out / "model.xgb.json")
    if module == "catboost":
        model.save_model(str(out / "model.cbm"), format="cbm")
        return _catboost(out / "model.cbm")
    if module == "sklearn" or hasattr(model, "fit"):
        import skops.io

        if not hasattr(model, "predict_proba"):
            raise ImportRefused(
                f"{source}: predict_proba: {type(model).__name__} has no predict_proba; "
                "expound explains a classifier's probability or log-odds"
            )
        skops.io.dump(model, out / "model.skops")
        return _skops(out / "model.skops", source)
    raise ImportRefused(f"{source}: {type(model).__name__} is not a model kind expound loads")


def _lightgbm(path: Path) -> _Converted:
    import lightgbm

    booster = lightgbm.Booster(model_file=str(path))
    names = list(booster.feature_name())
    unnamed = names == [f"Column_{j}" for j in range(len(names))]
    # LightGBM lists the values of its categorical features (numeric ones get a range).
    infos = booster.dump_model().get("feature_infos", {})
    categorical = [name for name in names if infos.get(name, {}).get("values")]
    try:
        stored = lightgbm_categories(booster, categorical)
    except ValueError as exc:
        raise ImportRefused(f"{path.name}: {exc}") from exc
    columns = None if unnamed else names
    return _Converted("lightgbm", path.name, booster, columns, categorical, [], stored)


def _xgboost(path: Path) -> _Converted:
    import xgboost

    booster = xgboost.Booster(model_file=str(path))
    names = list(booster.feature_names or []) or None
    # Categorical features ('c') are named only when the booster names its columns.
    types = booster.feature_types or []
    categorical = [name for name, kind in zip(names or [], types, strict=False) if kind == "c"]
    # XGBoost names the stored categories by column name: unnamed columns have none to pair.
    try:
        stored = xgboost_categories(booster) if names else {}
    except ValueError as exc:
        raise ImportRefused(f"{path.name}: {exc}") from exc
    return _Converted("xgboost", path.name, booster, names, categorical, [], stored)


def _catboost(path: Path) -> _Converted:
    import catboost

    model = catboost.CatBoost()
    model.load_model(str(path), format="cbm")
    names = list(model.feature_names_)
    categorical = [names[j] for j in model.get_cat_feature_indices()]
    return _Converted("catboost", path.name, model, names, categorical, [])


def _skops(path: Path, source: Path) -> _Converted:
    import skops.io

    # The import is the one place a person vouches for the artifact; the types it needs are
    # listed in the manifest, so the server trusts exactly these and nothing else.
    trusted = sorted(skops.io.get_untrusted_types(file=path))
    model = skops.io.load(path, trusted=trusted)
    if not hasattr(model, "predict_proba"):
        raise ImportRefused(f"{source}: predict_proba: {type(model).__name__} has none")
    names = getattr(model, "feature_names_in_", None)
    columns = [str(n) for n in names] if names is not None else None
    return _Converted("sklearn", path.name, model, columns, [], trusted)


# The artifact formats read as they are: the name an import gives the file, its reader.
_LOADERS: dict[str, tuple[str, Callable[[Path], _Converted]]] = {
    ".txt": ("model.lgb.txt", _lightgbm),
    ".json": ("model.xgb.json", _xgboost),
    ".ubj": ("model.xgb.ubj", _xgboost),
    ".cbm": ("model.cbm", _catboost),
}


def artifact_categories(path: Path) -> StoredCategories:
    """The category values a model directory's artifact stores, per column, as its import
    read them (boosters trained on pandas categoricals; none for other kinds)."""
    loader = _LOADERS.get(path.suffix.lower())
    return loader[1](path).stored_categories if loader is not None else {}


def convert_artifact(artifact: Path, out: Path, *, trust_pickle: bool) -> _Converted:
    """Writes ``artifact`` under ``out`` in a safe format and describes it."""
    suffix = artifact.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        if not trust_pickle:
            raise ImportRefused(
                f"{artifact}: a pickle runs code when read; pass --trust-pickle if you "
                "trust this file (it is converted to a safe format here)"
            )
        return _from_object(_load_pickle(artifact), out, artifact)
    loaders = _LOADERS
    if suffix == ".skops":
        shutil.copyfile(artifact, out / "model.skops")
        return _skops(out / "model.skops", artifact)
    if suffix not in loaders:
        raise ImportRefused(
            f"{artifact}: unknown artifact format {suffix!r} (LightGBM .txt, XGBoost "
            ".json/.ubj, CatBoost .cbm, .skops, or a trusted pickle)"
        )
    name, loader = loaders[suffix]
    shutil.copyfile(artifact, out / name)
    return loader(out / name)


def _feature_name(column: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")
    return name if re.match(r"^[a-z]", name) else f"f_{name}"


def _is_binary(series: pd.Series) -> bool:
    values = set(series.dropna().unique().tolist())
    return bool(values) and values <= {0, 1}


def _onehot_groups(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Groups of 0/1 columns named PREFIX_VALUE (or PREFIX=VALUE) never set two at a time.

    The shortest prefix that forms such a group wins, so "purpose_new_car" and
    "purpose_used_car" group under "purpose", not "purpose_new".
    """
    binary = [c for c in columns if _is_binary(frame[c])]
    prefixes = sorted(
        {c[:i] for c in binary for i, ch in enumerate(c) if ch in "_=" and i > 0}, key=len
    )
    groups: list[tuple[str, list[str]]] = []
    taken: set[str] = set()
    for prefix in prefixes:
        members = [
            c
            for c in binary
            if c not in taken
            and c.startswith(prefix)
            and c[len(prefix) : len(prefix) + 1] in ("_", "=")
        ]
        if len(members) >= 2 and int(frame[members].sum(axis=1).max()) <= 1:
            groups.append((prefix, members))
            taken.update(members)
    return groups


def _describe(column: str) -> str:
    return (
        f"{TODO}: describe {column!r} as a sentence reads it; is it protected? actionable "
        "(then declare its recourse)?"
    )


def _number_spec(name: str, column: str, series: pd.Series) -> FeatureSpec:
    values = series.dropna().astype(float)
    integer = bool((values == values.round()).all())
    return FeatureSpec(
        name=name,
        column=None if column == name else column,
        type="integer" if integer else "number",
        description=_describe(column),
        minimum=float(values.min()),
        maximum=float(values.max()),
        nullable=bool(series.isna().any()),
    )


def _category_spec(
    name: str, column: str, series: pd.Series, stored: list[CategoryCode] | None = None
) -> FeatureSpec:
    """A category feature: its codes the model's (the sample's values, or the indices of
    the values the artifact stores), its ids and TODO wording from the values."""
    codes: list[CategoryCode]
    if stored:
        values, codes = stored, list(range(len(stored)))
    else:
        raw = sorted(series.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))
        codes = [v if isinstance(v, str) else int(v) for v in raw]
        values = codes
    labels = [_feature_name(str(value)) for value in values]
    if len(set(labels)) != len(labels):
        labels = [f"{label}_{j}" for j, label in enumerate(labels)]
    return FeatureSpec(
        name=name,
        column=None if column == name else column,
        type="category",
        description=_describe(column),
        categories=labels,
        codes=codes,
        category_descriptions={
            label: f"{TODO}: what {value!r} means"
            for label, value in zip(labels, values, strict=True)
        },
        nullable=bool(series.isna().any()),
    )


def _onehot_spec(prefix: str, group: list[str], frame: pd.DataFrame) -> FeatureSpec:
    name = _feature_name(prefix)
    labels = [_feature_name(c[len(prefix) + 1 :]) for c in group]
    onehot: list[str | None] = list(group)
    if int(frame[group].sum(axis=1).min()) == 0:
        # Rows with no column set: the reference category (dropped when encoding).
        labels.append("reference")
        onehot.append(None)
    return FeatureSpec(
        name=name,
        type="category",
        description=_describe(name),
        categories=labels,
        onehot_columns=onehot,
        category_descriptions={label: f"{TODO}: what {label!r} means" for label in labels},
    )


def infer_features(
    frame: pd.DataFrame,
    columns: Sequence[str],
    categorical: Sequence[str],
    stored: StoredCategories | None = None,
) -> list[FeatureSpec]:
    """Feature specs for the model's columns, inferred from a sample of its data.

    Args:
        frame: the sample, stored-category columns already as the model's codes.
        columns: the model's columns, in its order.
        categorical: columns taken as categories whatever their values.
        stored: category values the artifact stores per column (their index is the code).
    """
    stored = stored or {}
    specs: list[FeatureSpec] = []
    grouped: dict[str, tuple[str, list[str]]] = {}
    for prefix, group in _onehot_groups(frame, columns):
        for column in group:
            grouped[column] = (prefix, group)
    done: set[str] = set()
    for column in columns:
        if column in done:
            continue
        if column in grouped:
            prefix, group = grouped[column]
            specs.append(_onehot_spec(prefix, group, frame))
            done.update(group)
            continue
        name, series = _feature_name(column), frame[column]
        if column in stored or column in categorical or not pd.api.types.is_numeric_dtype(series):
            specs.append(_category_spec(name, column, series, stored.get(column)))
        elif _is_binary(series):
            specs.append(
                FeatureSpec(
                    name=name,
                    column=None if column == name else column,
                    type="bool",
                    description=_describe(column),
                )
            )
        else:
            specs.append(_number_spec(name, column, series))
        done.add(column)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ImportRefused(f"column names collide once made feature names: {names}")
    return specs


def _coded_sample(frame: pd.DataFrame, converted: _Converted, data: Path) -> pd.DataFrame:
    """The sample with each column whose values the artifact stores as the model's codes.

    Raises:
        ImportRefused: a cell is not a stored value (nor its index); or a booster that takes
            numbers has a categorical column of text and stores no values to map it by.
    """
    coded = frame.copy()
    for column, values in converted.stored_categories.items():
        try:
            coded[column] = to_codes(frame[column], values)
        except ValueError as exc:
            raise ImportRefused(f"{data}: column {column!r} {exc}") from exc
    if converted.kind in ("xgboost", "lightgbm"):
        text = [
            c
            for c in converted.categorical
            if c not in converted.stored_categories and not pd.api.types.is_numeric_dtype(frame[c])
        ]
        if text:
            raise ImportRefused(
                f"{data}: columns {text} hold text, but the model stores no category values "
                f"to map it to the integer codes {converted.kind} takes (XGBoost stores them "
                "from 3.1, LightGBM when trained on pandas categoricals); give the sample as "
                "the codes the model was trained on"
            )
    return coded


def feature_value(spec: FeatureSpec, record: dict[str, Any]) -> FeatureScalar:
    """One sample row's value of a feature, as a request would send it."""
    if spec.onehot_columns is not None:
        hot = [c for c in spec.columns() if record[c] == 1]
        index = spec.onehot_columns.index(hot[0] if hot else None)
        return (spec.categories or [])[index]
    value = record[spec.columns()[0]]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if spec.type == "category":
        code = value if isinstance(value, str) else int(value)
        categories = spec.categories or []
        codes: list[CategoryCode] = (
            list(spec.codes) if spec.codes is not None else list(range(len(categories)))
        )
        if code not in codes:
            raise ValueError(
                f"{spec.columns()[0]} holds {value!r}, which is not among the model's "
                f"categories {codes}"
            )
        return categories[codes.index(code)]
    if spec.type == "bool":
        return bool(value)
    return float(value)


def _output_and_explainer(converted: _Converted) -> tuple[ScoreSpec, str]:
    """The output space the model's own explanation is exact in, and that explainer."""
    if converted.kind != "sklearn":
        return ScoreSpec(output=1, space="log_odds"), "tree"
    import shap

    model = converted.estimator
    estimator = model[-1] if hasattr(model, "steps") else model
    try:
        shap.TreeExplainer(estimator)
        tree = True
    except Exception:  # shap: "Model type not yet supported by TreeExplainer"
        tree = False
    binary = len(getattr(estimator, "classes_", [])) == 2
    if tree or hasattr(estimator, "coef_"):
        log_odds = binary and hasattr(estimator, "decision_function")
        score = ScoreSpec(output=1, space="log_odds" if log_odds else "probability")
        return score, "tree" if tree else "linear"
    return ScoreSpec(output=1, space="probability"), "sampling"


def import_model(
    artifact: Path,
    data: Path,
    out: Path,
    *,
    target: str | None = None,
    trust_pickle: bool = False,
    categorical: Sequence[str] = (),
    model_id: str | None = None,
    seed: int = DEFAULT_SEED,
) -> ModelManifest:
    """Writes a complete model directory at ``out`` and returns its manifest.

    The directory is written beside ``out`` under a hidden name and renamed to ``out`` once
    whole, so a refused import leaves nothing behind (a model directory without its
    manifest, under a server's model directory, would be served as unavailable). ``out``
    must not exist, or be empty: an import never overwrites a manifest being reviewed.

    Raises:
        ImportRefused: ``out`` holds something already; the artifact is an untrusted pickle,
            has no ``predict_proba``, is of an unknown kind, or does not fit the sample.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ImportRefused(
            f"{out}: already exists and is not empty; import into a new directory "
            "(its manifest.json, reviewed or not, is never overwritten)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.importing-", dir=out.parent))
    try:
        manifest = _write_model_directory(
            artifact,
            data,
            staging,
            out.name,
            target=target,
            trust_pickle=trust_pickle,
            categorical=categorical,
            model_id=model_id,
            seed=seed,
        )
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from a server's user
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _write_model_directory(
    artifact: Path,
    data: Path,
    out: Path,
    name: str,
    *,
    target: str | None,
    trust_pickle: bool,
    categorical: Sequence[str],
    model_id: str | None,
    seed: int,
) -> ModelManifest:
    """Writes the model directory's files into ``out``; ``name`` is its final name."""
    frame = pd.read_csv(data)
    if target is not None:
        if target not in frame.columns:
            raise ImportRefused(f"{data}: --target {target!r} is not a column of the sample")
        frame = frame.drop(columns=[target])
    converted = convert_artifact(artifact, out, trust_pickle=trust_pickle)
    columns = converted.columns or [str(c) for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ImportRefused(
            f"{data}: the artifact's columns {missing} are not in the sample; --data holds "
            "the model's inputs as the model takes them (its columns, its encoding)"
        )
    frame = _coded_sample(frame, converted, data)
    features = infer_features(
        frame, columns, [*converted.categorical, *categorical], converted.stored_categories
    )
    score, explainer = _output_and_explainer(converted)
    records = frame[columns].to_dict(orient="records")
    rows = [{s.name: feature_value(s, r) for s in features} for r in records]
    chosen = random.Random(seed).sample(rows, min(BACKGROUND_ROWS, len(rows)))
    background = out / "background.json"
    background.write_text(json.dumps(chosen, sort_keys=True, indent=0) + "\n")
    units = "log-odds" if score.space == "log_odds" else "probability"
    manifest = ModelManifest(
        model_id=model_id or _feature_name(name).replace("_", "-"),
        version="1.0.0",
        title=f"{TODO}: a title for this model",
        kind=converted.kind,
        artifact=converted.artifact,
        artifact_sha256=_sha256(out / converted.artifact),
        explainer=explainer,  # type: ignore[arg-type]
        score_meaning=f"{TODO}: the probability of what (class {score.output} of the model)",
        units=f"{units} of class {score.output}",
        score=score,
        decision=DecisionRule(threshold=0.5),
        features=features,
        reasons=[
            ReasonEntry(
                code=f"R{index:02d}",
                text=f"{TODO}: the reason as an adverse-action notice states it ({spec.name})",
                neutral_text=(
                    f"{TODO}: the same reason in the third person, for compliance and analyst "
                    f"texts ({spec.name})"
                ),
                features=[spec.name],
            )
            for index, spec in enumerate(features, start=1)
        ],
        background=background.name,
        background_sha256=_sha256(background),
        columns=columns,
        trusted_types=converted.trusted_types,
        training={
            "imported_from": artifact.name,
            "sample": data.name,
            "sample_sha256": _sha256(data),
            "background_seed": seed,
        },
    )
    text = json.dumps(manifest.model_dump(mode="json"), indent=2)
    (out / "manifest.json").write_text(text + "\n")
    return manifest
