"""Drift runs: list, detail, latest, per-feature history, and an admin check on demand."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, HTTPException, Path, Query
from sqlmodel import col, func, select

from service.api.deps import AdminDep, RuntimeDep, SessionDep
from service.api.routes._responses import errors
from service.api.schemas.drift import (
    CheckRequest,
    FeatureHistory,
    FeatureResultPublic,
    HistoryPoint,
    RunDetail,
    RunPage,
    RunPublic,
    RunStatus,
    StoredKind,
)
from service.api.schemas.timestamps import Timestamp
from service.db.tables import DriftRun, FeatureResult
from service.monitor import ManualWindow, NoTraffic
from service.monitor.sources import serving_monitor

_S = TypeVar("_S", bound=Any)  # a select over DriftRun, whatever it selects
router = APIRouter(
    prefix="/v1/drift", tags=["drift"], responses=errors(400, 401, 403, 404, 409, 413, 422, 503)
)

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


def _in_window(stmt: _S, since: datetime | None, until: datetime | None, model_version: str | None) -> _S:
    if since is not None:
        stmt = stmt.where(DriftRun.window_end >= since)
    if until is not None:
        stmt = stmt.where(DriftRun.window_end < until)
    if model_version is not None:
        stmt = stmt.where(DriftRun.model_version == model_version)
    return stmt


@router.get("/runs", response_model=RunPage)
def list_runs(
    session: SessionDep,
    runtime: RuntimeDep,
    limit: Limit = 50,
    offset: Offset = 0,
    since: Annotated[Timestamp | None, Query(description="Window end at or after this time.")] = None,
    until: Annotated[
        Timestamp | None, Query(description="Window end before this time (at or before `since`: no runs).")
    ] = None,
    model_version: Annotated[str | None, Query(max_length=50)] = None,
    status: RunStatus | None = None,
    kind: StoredKind | None = None,
) -> RunPage:
    """Runs of the served model, newest window first."""
    stmt = select(DriftRun).where(DriftRun.model_name == runtime.settings.model_name)
    stmt = _in_window(stmt, since, until, model_version)
    if status is not None:
        stmt = stmt.where(DriftRun.status == status)
    if kind is not None:
        stmt = stmt.where(DriftRun.kind == kind)
    total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(
        stmt.order_by(col(DriftRun.window_end).desc(), col(DriftRun.id).desc()).limit(limit).offset(offset)
    ).all()
    return RunPage(
        total=total,
        limit=limit,
        offset=offset,
        items=[RunPublic.of(r, runtime.settings) for r in rows],
    )


def _detail(session: SessionDep, runtime: RuntimeDep, run: DriftRun) -> RunDetail:
    features = session.exec(
        select(FeatureResult).where(FeatureResult.run_id == run.id).order_by(col(FeatureResult.id))
    ).all()
    public = RunPublic.of(run, runtime.settings)
    return RunDetail(
        **public.model_dump(),
        summary=orjson.loads(run.summary),
        features=[FeatureResultPublic.of(f) for f in features],
    )


@router.get("/runs/{run_id}", response_model=RunDetail)
def get_run(
    run_id: Annotated[int, Path(ge=1, le=2**31 - 1)], session: SessionDep, runtime: RuntimeDep
) -> RunDetail:
    run = session.get(DriftRun, run_id)
    if run is None:
        raise HTTPException(404, f"drift run {run_id} not found")
    return _detail(session, runtime, run)


@router.get("/latest", response_model=RunDetail)
def latest(session: SessionDep, runtime: RuntimeDep, kind: StoredKind = "drift") -> RunDetail:
    """The run of the most recent window of the served model."""
    run = session.exec(
        select(DriftRun)
        .where(DriftRun.model_name == runtime.settings.model_name, DriftRun.kind == kind)
        .order_by(col(DriftRun.window_end).desc(), col(DriftRun.id).desc())
    ).first()
    if run is None:
        raise HTTPException(404, f"no {kind} run yet for model {runtime.settings.model_name!r}")
    return _detail(session, runtime, run)


@router.get("/features/{name}/history", response_model=FeatureHistory)
def feature_history(
    name: str,
    session: SessionDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    model_version: Annotated[str | None, Query(max_length=50)] = None,
) -> FeatureHistory:
    """The statistic, threshold and decision of one feature (or `prediction`, or a metric) over time."""
    stmt = (
        select(FeatureResult, DriftRun)
        .join(DriftRun, col(DriftRun.id) == FeatureResult.run_id)
        .where(FeatureResult.feature == name, DriftRun.model_name == runtime.settings.model_name)
    )
    stmt = _in_window(stmt, since, until, model_version)
    rows = session.exec(
        stmt.order_by(col(DriftRun.window_end).desc(), col(DriftRun.id).desc()).limit(limit)
    ).all()
    if (
        not rows
        and session.exec(select(FeatureResult.id).where(FeatureResult.feature == name)).first() is None
    ):
        raise HTTPException(404, f"no results for feature {name!r}")
    points = [
        HistoryPoint(
            run_id=run.id or 0,
            window_start=run.window_start,
            window_end=run.window_end,
            model_version=run.model_version,
            method=fr.method,
            statistic=fr.statistic,
            p_val=fr.p_val,
            threshold=fr.threshold,
            is_drift=fr.is_drift,
            status=fr.status,
        )
        for fr, run in reversed(rows)
    ]
    return FeatureHistory(feature=name, points=points)


@router.post("/check", response_model=RunDetail, dependencies=[AdminDep])
def check_now(body: CheckRequest, session: SessionDep, runtime: RuntimeDep) -> RunDetail:
    """Check a window now (the same window asked again returns the stored run)."""
    if body.empty:
        raise HTTPException(409, "the window holds no rows: start is not before end; nothing was checked")
    monitor = serving_monitor(runtime)
    manual = ManualWindow(start=body.start, end=body.end, last_n=body.last_n)
    try:
        run = monitor.check_now(body.kind, manual, version=body.model_version)
    except NoTraffic as exc:
        raise HTTPException(409, str(exc)) from exc
    except Exception as exc:
        from retrain.errors import RegistryUnavailable

        if isinstance(exc, RegistryUnavailable):
            raise HTTPException(503, f"reference data unavailable: {exc}; nothing was stored") from exc
        raise
    return _detail(session, runtime, run)
