"""Reference profiles: fitted once per model version from its training data, stored in the database.

A reference frame has roles: the features are exactly the model signature's inputs (only they are
profiled), the target is the column the user names (`DRIFTLOOP_TARGET_COLUMN`, `reference set --target`;
else the first of the usual names present), and time or any other column is kept out of the profile. The
version's task (from the model, `retrain/task.py`) and its performance baseline are stored with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session, select

from detectors.performance_evidence import Baseline
from detectors.profile import ReferenceProfile
from service.codec import dumps, loads
from service.db.tables import ReferenceProfileRow, utcnow

log = logging.getLogger("driftloop.references")

SAMPLE_ROWS = 5000
NON_FEATURE_COLUMNS = ("target", "timestamp", "label", "prediction")
TARGET_NAMES = ("target", "label", "y", "class", "outcome")
TARGET_SETTING = "DRIFTLOOP_TARGET_COLUMN"


class ReferenceSource(Protocol):
    def load_reference(self, name: str, version: str) -> pd.DataFrame | None: ...


def performance_from_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The model's held-out metrics from its training run (`holdout_*` from bootstrap, `challenger_*` from
    a retrain): the yardstick realized performance is compared with."""
    for prefix in ("holdout_", "challenger_"):
        found = {k.removeprefix(prefix): v for k, v in metrics.items() if k.startswith(prefix)}
        if found:
            return found
    return {}


@dataclass(frozen=True)
class StoredReference:
    model_name: str
    model_version: str
    profile: ReferenceProfile
    sample: pd.DataFrame
    source: str
    task: str | None = None
    target: str | None = None
    baseline: Baseline | None = None


def feature_columns(df: pd.DataFrame, features: list[str] | None) -> list[str]:
    if features:
        missing = [f for f in features if f not in df.columns]
        if missing:
            raise ValueError(f"reference data lacks the model's features: {', '.join(missing)}")
        return features
    return [c for c in df.columns if c not in NON_FEATURE_COLUMNS]


def target_column(df: pd.DataFrame, named: str | None, features: list[str]) -> str | None:
    """The target column: `named` (which must exist), else the first usual name present that is not a
    feature, else None (the reference then has features only)."""
    if named:
        if named not in df.columns:
            raise ValueError(
                f"{TARGET_SETTING}={named!r}: the reference data has no such column "
                f"(columns: {', '.join(map(str, df.columns))})"
            )
        if named in features:
            raise ValueError(f"{TARGET_SETTING}={named!r} is one of the model's input columns")
        return named
    return next((c for c in TARGET_NAMES if c in df.columns and c not in features), None)


def store_reference(
    engine: sa.Engine,
    *,
    model_name: str,
    model_version: str,
    data: pd.DataFrame,
    features: list[str] | None = None,
    source: str,
    performance: dict[str, float] | None = None,
    target: str | None = None,
    task: str | None = None,
    baseline: Baseline | None = None,
) -> StoredReference:
    """Fit the profile of `data` (the model's training data) on its feature columns only (`features`: the
    signature's inputs) and store it with a bounded sample, the task and the performance baseline;
    `performance` is the model's held-out metrics (the yardstick of metrics without an evidence test)."""
    columns = feature_columns(data, features)
    label = target_column(data, target, columns)
    profile = ReferenceProfile.fit(
        data[columns], sample_size=SAMPLE_ROWS, seed=0, reference_performance=performance
    )
    # Features (and the target, when known) only: timestamps and ids are not drift evidence.
    kept = [*columns, *([label] if label is not None else [])]
    sample = data[kept].sample(n=SAMPLE_ROWS, random_state=0) if len(data) > SAMPLE_ROWS else data[kept]
    as_objects: Any = sample.astype(object)
    records: list[dict[str, Any]] = as_objects.where(sample.notna(), None).to_dict(orient="records")
    with Session(engine, expire_on_commit=False) as session, session.begin():
        save_reference(
            session,
            model_name=model_name,
            model_version=model_version,
            source=source,
            n_rows=len(data),
            profile_json=profile.to_json(),
            sample_json=dumps(records),
            task=task,
            target=label,
            baseline_json=dumps(baseline.to_dict()) if baseline is not None else None,
        )
    return StoredReference(
        model_name, model_version, profile, sample.reset_index(drop=True), source, task, label, baseline
    )


def load_reference(
    engine: sa.Engine,
    *,
    model_name: str,
    model_version: str,
    registry: ReferenceSource | None = None,
    features: list[str] | None = None,
    target: str | None = None,
) -> StoredReference | None:
    """The stored profile, else one fitted now from the registry's reference artifact (features = the
    signature's inputs, task = the model's, when the registry can tell), else None."""
    with Session(engine, expire_on_commit=False) as session:
        row = get_reference(session, model_name=model_name, model_version=model_version)
    if row is not None:
        return _stored(row)
    if registry is None:
        return None
    data = registry.load_reference(model_name, model_version)
    if data is None:
        return None
    metrics = getattr(registry, "version_metrics", None)
    inputs = getattr(registry, "input_columns", None)
    task_of = getattr(registry, "task", None)
    return store_reference(
        engine,
        performance=performance_from_metrics(metrics(model_name, model_version)) if metrics else None,
        model_name=model_name,
        model_version=model_version,
        data=data,
        features=features or (inputs(model_name, model_version) if inputs else None),
        source="mlflow:reference/reference.parquet",
        target=target,
        task=task_of(model_name, model_version) if task_of else None,
    )


def _stored(row: ReferenceProfileRow) -> StoredReference:
    sample = pd.DataFrame.from_records(loads(row.sample))
    baseline = Baseline.from_dict(loads(row.baseline)) if row.baseline else None
    return StoredReference(
        row.model_name, row.model_version, ReferenceProfile.from_json(row.profile), sample, row.source,
        row.task, row.target, baseline,
    )  # fmt: skip


def set_baseline(session: Session, *, model_name: str, model_version: str, baseline: Baseline) -> bool:
    """Store a version's performance baseline (a promoted challenger's holdout) on its reference row;
    False when the version has no reference row yet."""
    row = get_reference(session, model_name=model_name, model_version=model_version)
    if row is None:
        return False
    row.baseline = dumps(baseline.to_dict())
    session.add(row)
    session.flush()
    return True


def get_reference(session: Session, *, model_name: str, model_version: str) -> ReferenceProfileRow | None:
    return session.exec(
        select(ReferenceProfileRow).where(
            ReferenceProfileRow.model_name == model_name, ReferenceProfileRow.model_version == model_version
        )
    ).first()


def save_reference(
    session: Session,
    *,
    model_name: str,
    model_version: str,
    source: str,
    n_rows: int,
    profile_json: str,
    sample_json: str,
    task: str | None = None,
    target: str | None = None,
    baseline_json: str | None = None,
) -> ReferenceProfileRow:
    """Insert or replace the reference profile of one model version (a known baseline is kept when the
    new one is not given)."""
    row = get_reference(session, model_name=model_name, model_version=model_version)
    if row is None:
        row = ReferenceProfileRow(
            model_name=model_name, model_version=model_version, source=source, n_rows=n_rows,
            profile=profile_json, sample=sample_json, created_at=utcnow(), task=task, target=target,
            baseline=baseline_json,
        )  # fmt: skip
    else:
        row.source, row.n_rows, row.profile, row.sample = source, n_rows, profile_json, sample_json
        row.created_at, row.task, row.target = utcnow(), task or row.task, target
        row.baseline = baseline_json or row.baseline
    try:
        with session.begin_nested():
            session.add(row)
    except sa.exc.IntegrityError:  # two checks fitted the same missing profile at once: the first insert wins
        existing = get_reference(session, model_name=model_name, model_version=model_version)
        assert existing is not None
        return existing
    return row
