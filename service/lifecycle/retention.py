"""Retention of the prediction log: delete old rows in small batches, keeping what stored results need.

Policy (per model version, times in UTC):
- an unlabeled prediction is deleted once older than `retention_days`; a labeled one (with its feedback)
  once older than `labeled_retention_days` (at least `retention_days`); 0 keeps rows forever.
- never deleted, whatever their age (the *floors* of `floors`):
  - rows an open episode stands on: the windows of its runs and of the `breach_m - 1` runs before its first
    (the K of M that opened it), drift windows by prediction time, performance windows by label time;
  - rows a retrain job needs: jobs not finished, or finished within `retention_days`: their training
    window (labeled rows from `window_start` on; every labeled row of the model for an unfinished job without
    a window) and the run and episode that triggered them;
  - rows no scheduled check has read yet: after the version's last drift window (and labels after its last
    performance window), so catching up later still sees every row.
- any other stored run whose window loses rows gets `drift_runs.rows_deleted_at`: its stored result stands,
  it can no longer be recomputed from the log.
- every deleted row is counted per version in `retention_purges` (row windows count positions past them).

Each batch (`retention_batch_rows`) is one short transaction: select the oldest eligible ids, delete their
feedback and them, mark the runs and rollup days they touched, count them; a pause follows so the
prediction writer is never starved, and a run stops after `retention_max_seconds` (the next one continues).
The day of every deleted row is rolled up first (`rollups`), so the daily figures outlive the rows.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from service.config import Settings
from service.db.tables import (
    DriftRun,
    Episode,
    Feedback,
    Prediction,
    PredictionRollup,
    RetentionPurge,
    RetrainJob,
    utcnow,
)
from service.lifecycle.rollups import roll_up, run_rollups

P = Prediction.__table__  # type: ignore[attr-defined]
F = Feedback.__table__  # type: ignore[attr-defined]
RUNS = DriftRun.__table__  # type: ignore[attr-defined]
EP = Episode.__table__  # type: ignore[attr-defined]
JOBS = RetrainJob.__table__  # type: ignore[attr-defined]
ROLL = PredictionRollup.__table__  # type: ignore[attr-defined]
PURGE = RetentionPurge.__table__  # type: ignore[attr-defined]
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


@dataclass
class RetentionReport:
    deleted: int = 0
    labeled_deleted: int = 0
    batches: int = 0
    runs_marked: int = 0
    rollups: int = 0
    finished: bool = True  # False: stopped by the time budget, the next run continues
    per_version: dict[tuple[str, str], int] = field(default_factory=dict)
    held: list[tuple[str, str]] = field(default_factory=list)  # labeled rows kept (row windows)


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


def _eligible(
    model_name: str, model_version: str, b: Bounds, after: tuple[datetime, str] | None, limit: int
) -> sa.Select[Any]:
    labeled = F.c.prediction_id.isnot(None)
    keep_labeled: sa.ColumnElement[bool] = sa.false()
    if b.labeled_created is not None:
        keep_labeled = P.c.created_at < b.labeled_created
        if b.received is not None:
            keep_labeled = sa.and_(keep_labeled, F.c.received_at < b.received)
    stmt = (
        sa.select(P.c.id, P.c.created_at, labeled.label("labeled"), F.c.received_at)
        .select_from(P.outerjoin(F, F.c.prediction_id == P.c.id))
        .where(
            P.c.model_name == model_name,
            P.c.model_version == model_version,
            P.c.created_at < b.created,
            sa.or_(F.c.prediction_id.is_(None), keep_labeled),
        )
        .order_by(P.c.created_at, P.c.id)
        .limit(limit)
    )
    if after is not None:
        # the plain range lets the index start at the last batch (never re-walking deleted, unvacuumed rows)
        stmt = stmt.where(
            P.c.created_at >= after[0],
            sa.or_(P.c.created_at > after[0], sa.and_(P.c.created_at == after[0], P.c.id > after[1])),
        )
    return stmt


def _mark_runs(
    conn: sa.Connection,
    model_name: str,
    model_version: str,
    kind: str,
    lo: datetime,
    hi: datetime,
    now: datetime,
) -> int:
    stmt = (
        sa.update(RUNS)
        .where(
            RUNS.c.model_name == model_name,
            RUNS.c.model_version == model_version,
            RUNS.c.kind == kind,
            RUNS.c.rows_deleted_at.is_(None),
            RUNS.c.window_start <= hi,
            RUNS.c.window_end >= lo,
        )
        .values(rows_deleted_at=now)
    )
    return int(conn.execute(stmt).rowcount or 0)


def _count(
    conn: sa.Connection,
    model_name: str,
    model_version: str,
    rows: int,
    labeled: int,
    newest: datetime,
    now: datetime,
) -> None:
    key = (PURGE.c.model_name == model_name, PURGE.c.model_version == model_version)
    updated = conn.execute(
        sa.update(PURGE)
        .where(*key)
        .values(
            rows_deleted=PURGE.c.rows_deleted + rows,
            labeled_deleted=PURGE.c.labeled_deleted + labeled,
            last_created_at=sa.case(
                (PURGE.c.last_created_at > newest, PURGE.c.last_created_at), else_=newest
            ),
            updated_at=now,
        )
    ).rowcount
    if not updated:
        conn.execute(
            sa.insert(PURGE).values(
                model_name=model_name, model_version=model_version, rows_deleted=rows,
                labeled_deleted=labeled, last_created_at=newest, updated_at=now,
            )
        )  # fmt: skip


def delete_batch(
    conn: sa.Connection,
    model_name: str,
    model_version: str,
    b: Bounds,
    after: tuple[datetime, str] | None,
    limit: int,
    report: RetentionReport,
) -> tuple[datetime, str] | None:
    """One batch in the caller's transaction; returns the last row's key, or None when nothing is left."""
    rows = conn.execute(_eligible(model_name, model_version, b, after, limit)).all()
    if not rows:
        return None
    now = utcnow()
    ids = [r.id for r in rows]
    labeled = [r for r in rows if r.labeled]
    days = sorted({r.created_at.astimezone(UTC).date() for r in rows})
    rolled = set(
        conn.execute(
            sa.select(ROLL.c.day).where(
                ROLL.c.model_name == model_name, ROLL.c.model_version == model_version, ROLL.c.day.in_(days)
            )
        ).scalars()
    )
    for day in days:
        if day not in rolled:  # the rollup job runs first; this covers a day it has not reached
            roll_up(conn, model_name, model_version, day)
    conn.execute(
        sa.update(ROLL)
        .where(ROLL.c.model_name == model_name, ROLL.c.model_version == model_version, ROLL.c.day.in_(days))
        .values(final=True)
    )
    report.runs_marked += _mark_runs(
        conn, model_name, model_version, "drift", rows[0].created_at, rows[-1].created_at, now
    )
    if labeled:
        received = [r.received_at for r in labeled]
        report.runs_marked += _mark_runs(
            conn, model_name, model_version, "performance", min(received), max(received), now
        )
    # counted by what each DELETE removed: an overlapping run (a lapsed SQLite lease) never counts twice
    n_labeled = 0
    if labeled:
        n_labeled = _rowcount(
            conn.execute(sa.delete(F).where(_among(conn, F.c.prediction_id, [r.id for r in labeled])))
        )
    n_rows = _rowcount(conn.execute(sa.delete(P).where(_among(conn, P.c.id, ids))))
    _count(conn, model_name, model_version, n_rows, n_labeled, rows[-1].created_at, now)
    report.deleted += n_rows
    report.labeled_deleted += n_labeled
    report.batches += 1
    key = (model_name, model_version)
    report.per_version[key] = report.per_version.get(key, 0) + n_rows
    return rows[-1].created_at, rows[-1].id


def _among(conn: sa.Connection, column: sa.ColumnElement[str], ids: list[str]) -> sa.ColumnElement[bool]:
    """`column IN ids`; one array parameter on PostgreSQL (thousands of bound values cost more to send
    and parse than the delete itself)."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.cast(sa.literal(ids, ARRAY(sa.Text())), ARRAY(sa.Text())))
    return column.in_(ids)


def _rowcount(result: sa.CursorResult[Any]) -> int:
    return int(result.rowcount or 0)


def newest_time(conn: sa.Connection, model_name: str, model_version: str) -> datetime | None:
    stmt = sa.select(P.c.created_at).where(P.c.model_name == model_name, P.c.model_version == model_version)
    value: datetime | None = conn.execute(stmt.order_by(P.c.created_at.desc()).limit(1)).scalar_one_or_none()
    return value


def versions(conn: sa.Connection) -> list[tuple[str, str]]:
    """Versions with rolled-up days (every day older than today is rolled up before it is deleted)."""
    stmt = (
        sa.select(ROLL.c.model_name, ROLL.c.model_version)
        .distinct()
        .order_by(ROLL.c.model_name, ROLL.c.model_version)
    )
    return [(r[0], r[1]) for r in conn.execute(stmt)]


def run_retention(
    engine: sa.Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    models: Collection[str] | None = None,
) -> RetentionReport:
    """The scheduler job: roll up complete days, then delete what the policy allows, batch by batch."""
    now = now or utcnow()
    report = RetentionReport()
    report.rollups = run_rollups(engine, now=now, models=models)
    if settings.retention_days <= 0:
        return report
    started = time.monotonic()
    with engine.connect() as conn:
        todo = [v for v in versions(conn) if models is None or v[0] in models]
    for model_name, model_version in todo:
        with engine.connect() as conn:
            newest = newest_time(conn, model_name, model_version)
            b = bounds(
                settings,
                now,
                floors(conn, model_name, settings, now),
                unchecked_floors(conn, model_name, model_version),
                newest,
            )
        if b is None:
            continue
        if row_windows_hold(settings, now, newest):
            report.held.append((model_name, model_version))
            b = replace(b, labeled_created=None)
        after: tuple[datetime, str] | None = None
        while True:
            with engine.begin() as conn:
                after = delete_batch(
                    conn, model_name, model_version, b, after, settings.retention_batch_rows, report
                )
            if after is None:
                break
            # checked after a batch: every run makes progress, however short its budget
            if time.monotonic() - started > settings.retention_max_seconds:
                report.finished = False
                return report
            time.sleep(settings.retention_pause_ms / 1000.0)
    return report
