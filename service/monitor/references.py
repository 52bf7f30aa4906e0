"""Reference profiles: fitted once per model version from its training data, stored in the database."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session, select

from detectors.profile import ReferenceProfile
from service.codec import dumps, loads
from service.db.tables import ReferenceProfileRow, utcnow

log = logging.getLogger("driftloop.references")

SAMPLE_ROWS = 5000
NON_FEATURE_COLUMNS = ("target", "timestamp", "label", "prediction")


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


def feature_columns(df: pd.DataFrame, features: list[str] | None) -> list[str]:
    if features:
        missing = [f for f in features if f not in df.columns]
        if missing:
            raise ValueError(f"reference data lacks the model's features: {', '.join(missing)}")
        return features
    return [c for c in df.columns if c not in NON_FEATURE_COLUMNS]


def store_reference(
    engine: sa.Engine,
    *,
    model_name: str,
    model_version: str,
    data: pd.DataFrame,
    features: list[str] | None = None,
    source: str,
    performance: dict[str, float] | None = None,
) -> StoredReference:
    """Fit the profile of `data` (the model's training data) and store it with a bounded sample;
    `performance` is the model's held-out metrics (the baseline of realized performance)."""
    columns = feature_columns(data, features)
    profile = ReferenceProfile.fit(
        data[columns], sample_size=SAMPLE_ROWS, seed=0, reference_performance=performance
    )
    # Features (and the target, when known) only: timestamps and ids are not drift evidence.
    kept = [*columns, *(["target"] if "target" in data.columns and "target" not in columns else [])]
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
        )
    return StoredReference(model_name, model_version, profile, sample.reset_index(drop=True), source)


def load_reference(
    engine: sa.Engine,
    *,
    model_name: str,
    model_version: str,
    registry: ReferenceSource | None = None,
    features: list[str] | None = None,
) -> StoredReference | None:
    """The stored profile, else one fitted now from the registry's reference artifact, else None."""
    with Session(engine, expire_on_commit=False) as session:
        row = get_reference(session, model_name=model_name, model_version=model_version)
    if row is not None:
        sample = pd.DataFrame.from_records(loads(row.sample))
        return StoredReference(
            model_name, model_version, ReferenceProfile.from_json(row.profile), sample, row.source
        )
    if registry is None:
        return None
    data = registry.load_reference(model_name, model_version)
    if data is None:
        return None
    metrics = getattr(registry, "version_metrics", None)
    return store_reference(
        engine,
        performance=performance_from_metrics(metrics(model_name, model_version)) if metrics else None,
        model_name=model_name,
        model_version=model_version,
        data=data,
        features=features,
        source="mlflow:reference/reference.parquet",
    )


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
) -> ReferenceProfileRow:
    """Insert or replace the reference profile of one model version."""
    row = get_reference(session, model_name=model_name, model_version=model_version)
    if row is None:
        row = ReferenceProfileRow(
            model_name=model_name, model_version=model_version, source=source, n_rows=n_rows,
            profile=profile_json, sample=sample_json, created_at=utcnow(),
        )  # fmt: skip
    else:
        row.source, row.n_rows, row.profile, row.sample = source, n_rows, profile_json, sample_json
        row.created_at = utcnow()
    try:
        with session.begin_nested():
            session.add(row)
    except sa.exc.IntegrityError:  # two checks fitted the same missing profile at once: the first insert wins
        existing = get_reference(session, model_name=model_name, model_version=model_version)
        assert existing is not None
        return existing
    return row
