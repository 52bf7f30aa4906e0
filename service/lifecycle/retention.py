"""Retention of the prediction log: delete old rows in small batches, keeping what stored results need.

Policy (per model version, times in UTC):
- an unlabeled prediction is deleted once older than `retention_days`; a labeled one (with its feedback)
  once older than `labeled_retention_days` (at least `retention_days`); 0 keeps rows forever.
- never deleted, whatever their age (the floors of `keep.floors`):
  - rows an open episode stands on: the windows of its runs and of the `breach_m - 1` runs before its first
    (the K of M that opened it), drift windows by prediction time, performance windows by label time;
  - rows a retrain job needs: jobs not finished, or finished within `retention_days`: their training
    window (labeled rows from `window_start` on; every labeled row of the model for an unfinished job without
    a window) and the run and episode that triggered them;
  - rows no scheduled check has read yet: after the version's last drift window (and labels after its last
    performance window), so catching up later still sees every row; the newest row of each version;
  - under `window_kind=rows`, the labeled rows of a version still receiving traffic (`keep.row_windows_hold`).
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
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from service.config import Settings
from service.db.lifecycle_tables import PredictionRollup, RetentionPurge
from service.db.tables import DriftRun, Feedback, Prediction, utcnow
from service.lifecycle.keep import Bounds, bounds, floors, newest_time, row_windows_hold, unchecked_floors
from service.lifecycle.rollups import roll_up, run_rollups

P = Prediction.__table__  # type: ignore[attr-defined]
F = Feedback.__table__  # type: ignore[attr-defined]
RUNS = DriftRun.__table__  # type: ignore[attr-defined]
ROLL = PredictionRollup.__table__  # type: ignore[attr-defined]
PURGE = RetentionPurge.__table__  # type: ignore[attr-defined]


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
