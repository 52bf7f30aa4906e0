"""What retention must keep: the floors that stored runs, open episodes, retrain jobs and unread windows
put under a version's rows, and the deletion bounds they leave (the policy is in `retention`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from service.config import Settings
from service.db.tables import DriftRun, Episode, Prediction, RetrainJob

P = Prediction.__table__  # type: ignore[attr-defined]
RUNS = DriftRun.__table__  # type: ignore[attr-defined]
EP = Episode.__table__  # type: ignore[attr-defined]
JOBS = RetrainJob.__table__  # type: ignore[attr-defined]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNREAD_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class Floors:
    """Per model: rows at or after these times are kept (None: nothing needs them)."""

    created: datetime | None = None  # any prediction created at or after
    labeled_created: datetime | None = None  # a labeled prediction created at or after
    received: datetime | None = None  # a labeled prediction whose label arrived at or after


def _min(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _window_floors(conn: sa.Connection, runs: sa.Select[Any]) -> tuple[datetime | None, datetime | None]:
    """Earliest window start among `runs` (a select of run ids), for drift and performance runs."""
    stmt = (
        sa.select(RUNS.c.kind, sa.func.min(RUNS.c.window_start))
        .where(RUNS.c.id.in_(runs.scalar_subquery()))
        .group_by(RUNS.c.kind)
    )
    found: dict[str, datetime | None] = {k: v for k, v in conn.execute(stmt).all()}
    return found.get("drift"), found.get("performance")


def floors(conn: sa.Connection, model_name: str, settings: Settings, now: datetime) -> Floors:
    created = labeled = received = None
    for ep in conn.execute(
        sa.select(EP.c.kind, EP.c.first_run_id).where(EP.c.model_name == model_name, EP.c.status == "open")
    ):
        same = sa.and_(RUNS.c.model_name == model_name, RUNS.c.kind == ep.kind)
        before = (
            sa.select(RUNS.c.id)
            .where(same, RUNS.c.id < ep.first_run_id)
            .order_by(RUNS.c.id.desc())
            .limit(max(settings.breach_m - 1, 0))
        )
        lead = conn.execute(before).scalars().all()
        since = sa.select(RUNS.c.id).where(
            same, sa.or_(RUNS.c.id >= ep.first_run_id, RUNS.c.id.in_(lead or [-1]))
        )
        d, p = _window_floors(conn, since)
        created, received = _min(created, d), _min(received, p)
    recent = now - timedelta(days=settings.retention_days or 36500)
    jobs = conn.execute(
        sa.select(JOBS.c.finished_at, JOBS.c.window_start, JOBS.c.drift_run_id, JOBS.c.episode_id).where(
            JOBS.c.model_name == model_name,
            sa.or_(JOBS.c.finished_at.is_(None), JOBS.c.finished_at >= recent),
        )
    ).all()
    for job in jobs:
        if job.window_start is not None:
            labeled = _min(labeled, job.window_start)
        elif job.finished_at is None:
            labeled = EPOCH  # it will read the model's most recent labeled rows, wherever they are
        runs = [job.drift_run_id] if job.drift_run_id is not None else []
        if job.episode_id is not None:
            runs += (
                conn.execute(sa.select(EP.c.first_run_id).where(EP.c.id == job.episode_id)).scalars().all()
            )
        if runs:
            d, p = _window_floors(conn, sa.select(RUNS.c.id).where(RUNS.c.id.in_(runs)))
            created, received = _min(created, d), _min(received, p)
    return Floors(created, labeled, received)


def unchecked_floors(
    conn: sa.Connection, model_name: str, model_version: str
) -> tuple[datetime | None, datetime | None]:
    """Ends of the version's last scheduled drift and performance windows: rows after them are unread."""
    stmt = (
        sa.select(RUNS.c.kind, sa.func.max(RUNS.c.window_end))
        .where(
            RUNS.c.model_name == model_name,
            RUNS.c.model_version == model_version,
            RUNS.c.trigger == "schedule",
        )
        .group_by(RUNS.c.kind)
    )
    found: dict[str, datetime | None] = {k: v for k, v in conn.execute(stmt).all()}
    # a row's commit order can trail its time by the group commit's wait: stay clear of the boundary
    return tuple(
        v - UNREAD_MARGIN if v is not None else None for v in (found.get("drift"), found.get("performance"))
    )  # type: ignore[return-value]


@dataclass(frozen=True)
class Bounds:
    """A row of the version is deleted when created before `created`, and, if labeled, also created
    before `labeled_created` with its label received before `received` (None: no bound of that kind)."""

    created: datetime
    labeled_created: datetime | None  # None: labeled rows are kept
    received: datetime | None  # None: no label-time bound


def bounds(
    settings: Settings,
    now: datetime,
    f: Floors,
    unchecked: tuple[datetime | None, datetime | None],
    newest: datetime | None = None,
) -> Bounds | None:
    """`newest`: the version's last prediction time, always kept (on SQLite the next `seq` follows the
    largest one left, so the log is never emptied)."""
    if settings.retention_days <= 0:
        return None
    created = _min(now - timedelta(days=settings.retention_days), f.created, unchecked[0], newest)
    assert created is not None
    labeled_days = max(settings.labeled_retention_days, settings.retention_days)
    labeled = (
        None
        if settings.labeled_retention_days <= 0
        else _min(created, now - timedelta(days=labeled_days), f.labeled_created)
    )
    return Bounds(created, labeled, _min(f.received, unchecked[1]))


def row_windows_hold(settings: Settings, now: datetime, newest: datetime | None) -> bool:
    """Whether a version's *labeled* rows stay. Drift row blocks chain over the commit sequence (each is
    the N rows after the last checked block's last `seq`), so deleting checked rows never shifts them; but
    performance row windows are still numbered by position in label-arrival order (service/monitor/
    windows.py), so deleting labeled rows of a version still receiving traffic would shift the windows not
    yet checked, until the monitor counts `retention_purges.labeled_deleted` into those positions. Until
    then, under `window_kind=rows`, labeled rows are trimmed only from versions without traffic for
    `retention_days`; time windows are fixed buckets and every row is trimmed."""
    if settings.window_kind != "rows" or newest is None:
        return False
    return newest >= now - timedelta(days=settings.retention_days)


def newest_time(conn: sa.Connection, model_name: str, model_version: str) -> datetime | None:
    stmt = sa.select(P.c.created_at).where(P.c.model_name == model_name, P.c.model_version == model_version)
    value: datetime | None = conn.execute(stmt.order_by(P.c.created_at.desc()).limit(1)).scalar_one_or_none()
    return value


def deletable(p: Any, f: Any, model_name: str, model_version: str, b: Bounds) -> sa.ColumnElement[bool]:
    """Rows of `p` (the predictions table or one partition), outer-joined with their label in `f`, that
    the version's bounds let go."""
    labeled_goes: sa.ColumnElement[bool] = sa.false()
    if b.labeled_created is not None:
        labeled_goes = p.c.created_at < b.labeled_created
        if b.received is not None:
            labeled_goes = sa.and_(labeled_goes, f.c.received_at < b.received)
    return sa.and_(
        p.c.model_name == model_name,
        p.c.model_version == model_version,
        p.c.created_at < b.created,
        sa.or_(f.c.prediction_id.is_(None), labeled_goes),
    )
