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

Per model, `retention_days` and `labeled_retention_days` come from the models file when it sets them
(`service/model_settings.py`), else from the process's settings.

PostgreSQL (the table partitioned by day, `partitions`): the job first creates the day partitions ahead,
then removes whole days where most rows go (`day_retention`: a drop, or the rows that stay copied into a
replacement); what is left (the default partition, days where few rows go) goes in batches. SQLite:
batches only (`batches`).

Each batch (`retention_batch_rows`) is one short transaction: select the oldest eligible ids, delete their
feedback and them, mark the runs and rollup days they touched, count them. Every step (a batch, a day's
count, copy or swap) is followed by a pause of `retention_rest_ratio` times its own time (at least
`retention_pause_ms`), so retention takes a bounded share of the machine from serving (`batches.Pace`),
and a run stops after `retention_max_seconds` (the next one continues).
The day of every deleted row is rolled up first (`rollups`), so the daily figures outlive the rows.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from service.config import Settings
from service.db.lifecycle_tables import PredictionRollup
from service.db.tables import utcnow
from service.lifecycle import partitions
from service.lifecycle.batches import P, Pace, RetentionReport, delete_batch
from service.lifecycle.day_retention import remove_days
from service.lifecycle.export_state import export_floor
from service.lifecycle.keep import Bounds, bounds, floors, newest_time, row_windows_hold, unchecked_floors
from service.lifecycle.rollups import roll_up_pending
from service.model_settings import ModelsFileError, load_models

__all__ = ["RetentionReport", "run_retention", "model_settings", "plan"]
ROLL = PredictionRollup.__table__  # type: ignore[attr-defined]


def versions(conn: sa.Connection) -> list[tuple[str, str]]:
    """Versions with rolled-up days (every day older than today is rolled up before it is deleted)."""
    stmt = (
        sa.select(ROLL.c.model_name, ROLL.c.model_version)
        .distinct()
        .order_by(ROLL.c.model_name, ROLL.c.model_version)
    )
    return [(r[0], r[1]) for r in conn.execute(stmt)]


def model_settings(settings: Settings) -> dict[str, Settings]:
    """The models with their own settings in the models file (the others use `settings`)."""
    try:
        models = load_models(settings)
    except ModelsFileError:  # checked when the app was built; edited since: the process's settings hold
        return {}
    return {name: models.settings_for(settings, name) for name in models.overrides}


def plan(
    engine: sa.Engine,
    settings: Settings,
    now: datetime,
    todo: list[tuple[str, str]],
    report: RetentionReport,
) -> dict[tuple[str, str], Bounds]:
    """Each version's deletion bounds (a version whose model keeps rows forever has none)."""
    own = model_settings(settings)
    out: dict[tuple[str, str], Bounds] = {}
    for model_name, model_version in todo:
        s = own.get(model_name, settings)
        with engine.connect() as conn:
            newest = newest_time(conn, model_name, model_version)
            b = bounds(
                s,
                now,
                floors(conn, model_name, s, now),
                unchecked_floors(conn, model_name, model_version),
                newest,
            )
            # with a scheduled export, rows not yet in the export target stay
            hold = export_floor(conn, s, model_name)
        if b is None:
            continue
        if hold is not None and hold < b.created:
            b = replace(b, created=hold)
        if row_windows_hold(s, now, newest):
            report.held.append((model_name, model_version))
            b = replace(b, labeled_created=None)
        out[(model_name, model_version)] = b
    return out


def run_retention(
    engine: sa.Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    models: Collection[str] | None = None,
) -> RetentionReport:
    """The scheduler job: day partitions ahead, rollups of complete days, then what the policy deletes:
    whole days where PostgreSQL partitions the table, then batch by batch."""
    now = now or utcnow()
    report = RetentionReport()
    started = time.monotonic()
    with engine.connect() as conn:
        partitioned = partitions.is_partitioned(conn)
    if partitioned:
        partitions.drop_leftovers(engine)
        report.partitions_created = partitions.ensure_partitions(engine, now)
    rolled = roll_up_pending(engine, now=now, models=models, max_seconds=settings.rollup_max_seconds)
    report.rollups = rolled.completed
    if not rolled.finished:
        # a day not rolled up yet would be rolled up inside a delete batch (a long transaction): wait
        report.finished = False
        return report
    with engine.connect() as conn:
        todo = [v for v in versions(conn) if models is None or v[0] in models]
    bounds_of = plan(engine, settings, now, todo, report)

    pace = Pace(
        settings.retention_pause_ms / 1000.0, settings.retention_rest_ratio, settings.retention_max_seconds
    )
    pace.started = started
    tables: list[object] = [P]
    if partitioned:
        days = remove_days(engine, bounds_of, pace)
        for removed in days.removed:
            report.add(removed)
        report.runs_marked += days.runs_marked
        report.days_dropped, report.days_replaced = days.dropped, days.replaced
        report.days_deferred = days.deferred
        report.worked_s = pace.worked
        # the batches walk only what whole days left: a kept day's rows are never re-read
        tables = [partitions.table_of(name) for name in days.left]
    for (model_name, model_version), b in bounds_of.items():
        for table in tables:
            after: tuple[datetime, str] | None = None
            while True:
                with pace.step(), engine.begin() as conn:
                    after = delete_batch(
                        conn, model_name, model_version, b, after, settings.retention_batch_rows, report,
                        table,
                    )  # fmt: skip
                report.worked_s = pace.worked
                if after is None:
                    break
                # checked after a batch: every run makes progress, however short its budget
                if pace.out_of_time():
                    report.finished = False
                    return report
    if report.days_deferred:
        report.finished = False
    return report
