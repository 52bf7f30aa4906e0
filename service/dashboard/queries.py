"""Read-only queries behind the dashboard and the run reports (never writes, never commits)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from service.db.tables import DriftRun, FeatureResult, Feedback, Prediction
from service.monitor import episodes as episodes_store


@dataclass(frozen=True)
class RunRef:
    """What a report needs to know about a run."""

    id: int
    window_key: str
    kind: str
    model_name: str
    model_version: str
    window_start: datetime
    window_end: datetime
    n_rows: int
    status: str
    started_at: datetime


def get_run(engine: sa.Engine, run_id: int) -> RunRef | None:
    with Session(engine) as session:
        run = session.get(DriftRun, run_id)
        if run is None or run.id is None:
            return None
        return RunRef(
            id=run.id,
            window_key=run.window_key,
            kind=run.kind,
            model_name=run.model_name,
            model_version=run.model_version,
            window_start=run.window_start,
            window_end=run.window_end,
            n_rows=run.n_rows,
            status=run.status,
            started_at=run.started_at,
        )


def latest_runs(engine: sa.Engine, *, model_name: str, limit: int = 20) -> list[dict[str, Any]]:
    stmt = (
        select(DriftRun)
        .where(DriftRun.model_name == model_name)
        .order_by(col(DriftRun.id).desc())
        .limit(limit)
    )
    with Session(engine) as session:
        runs = session.exec(stmt).all()
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "trigger": r.trigger,
            "model_version": r.model_version,
            "window_start": r.window_start.isoformat(),
            "window_end": r.window_end.isoformat(),
            "n_rows": r.n_rows,
            "status": r.status,
            "dataset_drift": r.dataset_drift,
            "drift_share": _finite(r.drift_share),
            "is_breach": r.is_breach,
            "duration_ms": _finite(r.duration_ms),
            # features whose missing rate surged (a data-quality breach beside the run's drift status)
            "data_quality_features": orjson.loads(r.summary).get("data_quality_features") or []
            if r.kind == "drift"
            else [],
        }
        for r in runs
    ]


def open_episodes(engine: sa.Engine, *, model_name: str) -> list[dict[str, Any]]:
    with Session(engine) as session:
        episodes = list(reversed(episodes_store.open_episodes(session, model_name)))
    return [
        {
            "id": e.id,
            "kind": e.kind,
            "opened_at": e.opened_at.isoformat(),
            "first_run_id": e.first_run_id,
            "last_run_id": e.last_run_id,
        }
        for e in episodes
    ]


def feature_series(
    engine: sa.Engine, *, model_name: str, runs: int = 50, kind: str = "drift"
) -> dict[str, list[dict[str, Any]]]:
    """Per feature (per metric for kind="performance"), the results of the last `runs` runs, oldest first."""
    recent = (
        select(DriftRun.id)
        .where(DriftRun.model_name == model_name, DriftRun.kind == kind)
        .order_by(col(DriftRun.id).desc())
        .limit(runs)
        .subquery()
    )
    stmt = (
        select(FeatureResult, DriftRun.window_end, DriftRun.model_version)
        .join(DriftRun, col(DriftRun.id) == FeatureResult.run_id)
        .where(col(FeatureResult.run_id).in_(select(recent.c.id)))
        .order_by(col(DriftRun.window_end), col(FeatureResult.run_id))
    )
    series: dict[str, list[dict[str, Any]]] = {}
    with Session(engine) as session:
        for result, window_end, version in session.exec(stmt).all():
            series.setdefault(result.feature, []).append(
                {
                    "run_id": result.run_id,
                    "window_end": window_end.isoformat(),
                    "model_version": version,
                    "method": result.method,
                    "statistic": _finite(result.statistic),
                    "p_val": _finite(result.p_val),
                    "threshold": _finite(result.threshold),
                    "is_drift": result.is_drift,
                    "status": result.status,
                }
            )
    return dict(sorted(series.items()))


def window_feature_rows(engine: sa.Engine, run: RunRef, *, max_rows: int) -> list[str]:
    """The `features` JSON of the run's window, thinned to at most `max_rows` evenly over time.

    A drift run's window is its predictions' `created_at` range; a performance run's is the arrival range of
    its labels (`feedback.received_at`), as the monitor reads them. Every k-th row (k = ceil(n / max_rows))
    is a deterministic sample, so a cached report matches a re-render; only sampled rows leave the database.
    """
    tables = SQLModel.metadata.tables  # typed columns: UTC datetimes bind alike on SQLite and PostgreSQL
    p, f = tables[Prediction.__tablename__].c, tables[Feedback.__tablename__].c
    source: sa.FromClause = tables[Prediction.__tablename__]
    at, tiebreak = p.created_at, p.id
    if run.kind == "performance":
        source = source.join(tables[Feedback.__tablename__], f.prediction_id == p.id)
        at = f.received_at
    window = sa.and_(
        p.model_name == run.model_name,
        p.model_version == run.model_version,
        at >= run.window_start,
        at <= run.window_end,
    )
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(source).where(window)).scalar_one()
        if n == 0:
            return []
        step = max(1, math.ceil(n / max_rows))
        numbered = (
            sa.select(p.features, sa.func.row_number().over(order_by=(at, tiebreak)).label("rn"))
            .select_from(source)
            .where(window)
            .subquery()
        )
        stmt = sa.select(numbered.c.features).where((numbered.c.rn - 1) % step == 0)
        return [row[0] for row in conn.execute(stmt)]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
