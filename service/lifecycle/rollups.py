"""Daily rollups of the prediction log: per model, version and UTC day, what survives retention.

A rollup holds the day's prediction count, labeled count, latency percentiles and the prediction
distribution (class counts, or quantiles of a numeric output; `rollup_stats`). It is computed from the raw
rows of a complete day and recomputed while labels may still arrive (`RECOMPUTE_DAYS`), at most once per
`RECOMPUTE_EVERY` (the job runs hourly beside retention: re-reading the last days at every run would cost
more than the rollups themselves); once retention deletes rows of the day it is `final` and never
recomputed from what is left.

Bounded work: a day is read in keyset chunks of `CHUNK_ROWS`, each its own short read (no transaction or
snapshot is held across a day of a big log), and a run stops after its budget (`max_seconds`, `max_rows`,
checked after each chunk so every run makes progress). A day stopped part-way keeps its accumulated
state in `rollup_progress` and the next run continues after its last row. Finding the pending days is
one index seek per version-day (`log_scan`), never a scan of the log.
"""

from __future__ import annotations

import time as clock
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from service.codec import dumps
from service.db.export_tables import RollupProgress
from service.db.lifecycle_tables import PredictionRollup
from service.db.tables import Feedback, Prediction, utcnow
from service.lifecycle.log_scan import EPOCH_TIME, first_time, log_versions
from service.lifecycle.rollup_stats import EDGES as EDGES
from service.lifecycle.rollup_stats import DayStats
from service.lifecycle.rollup_stats import histogram_quantile as histogram_quantile

P = Prediction.__table__  # type: ignore[attr-defined]
F = Feedback.__table__  # type: ignore[attr-defined]
R = PredictionRollup.__table__  # type: ignore[attr-defined]
PROGRESS = RollupProgress.__table__  # type: ignore[attr-defined]
CHUNK_ROWS = 20_000
RECOMPUTE_DAYS = 2  # a day's rollup is recomputed until it was computed this long after the day ended
RECOMPUTE_EVERY = timedelta(hours=24)  # and at most this often: each day is read 3 times in all


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _chunk(
    model_name: str, model_version: str, day: date, after: tuple[datetime, str] | None, limit: int
) -> sa.Select[Any]:
    """The next `limit` rows of the version-day after the key `after`, in (created_at, id) order."""
    start, end = day_bounds(day)
    labeled = F.c.prediction_id.isnot(None)
    stmt = (
        sa.select(P.c.created_at, P.c.id, P.c.latency_ms, P.c.output, P.c.probabilities, labeled)
        .select_from(P.outerjoin(F, F.c.prediction_id == P.c.id))
        .where(
            P.c.model_name == model_name,
            P.c.model_version == model_version,
            P.c.created_at >= start,
            P.c.created_at < end,
        )
        .order_by(P.c.created_at, P.c.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(
            P.c.created_at >= after[0],
            sa.or_(P.c.created_at > after[0], sa.and_(P.c.created_at == after[0], P.c.id > after[1])),
        )
    return stmt


def compute_day(
    conn: sa.Connection, model_name: str, model_version: str, day: date, chunk_rows: int = CHUNK_ROWS
) -> DayStats:
    """One version-day's statistics in the caller's transaction (retention's fallback for a day the
    rollup job has not reached)."""
    stats, after = DayStats(seed=day.toordinal()), None
    while True:
        rows = conn.execute(_chunk(model_name, model_version, day, after, chunk_rows)).all()
        if rows:
            stats.add([r[2:] for r in rows])
            after = (rows[-1][0], rows[-1][1])
        if len(rows) < chunk_rows:
            return stats


def store_day(
    conn: sa.Connection,
    model_name: str,
    model_version: str,
    day: date,
    stats: DayStats,
    computed_at: datetime | None = None,
) -> None:
    """Insert or replace the rollup (never a final one); `computed_at`: the time the job ran at."""
    values = {
        "predictions": stats.predictions,
        "labeled": stats.labeled,
        "latency_p50": stats.latency(0.5),
        "latency_p95": stats.latency(0.95),
        "latency_p99": stats.latency(0.99),
        "latency_max": stats.latency_max,
        "outputs": dumps(stats.outputs()),
        "computed_at": computed_at or utcnow(),
    }
    key = (R.c.model_name == model_name, R.c.model_version == model_version, R.c.day == day)
    existing = conn.execute(sa.select(R.c.id, R.c.final).where(*key)).first()
    if existing is None:
        conn.execute(
            sa.insert(R).values(
                model_name=model_name, model_version=model_version, day=day, final=False, **values
            )
        )
    elif not existing.final:
        conn.execute(sa.update(R).where(R.c.id == existing.id).values(**values))


def roll_up(conn: sa.Connection, model_name: str, model_version: str, day: date) -> None:
    """Compute and store one version-day (the caller owns the transaction)."""
    store_day(conn, model_name, model_version, day, compute_day(conn, model_name, model_version, day))


def _stale(final: bool, computed_at: datetime, day: date, now: datetime) -> bool:
    """Whether a stored rollup is recomputed: not final, computed before its labels settled (the day's
    end + RECOMPUTE_DAYS) and at least RECOMPUTE_EVERY ago."""
    settled = day_bounds(day)[1] + timedelta(days=RECOMPUTE_DAYS)
    return not final and computed_at < settled and computed_at <= now - RECOMPUTE_EVERY


def pending_days(
    conn: sa.Connection, now: datetime, models: Collection[str] | None = None
) -> list[tuple[str, str, date]]:
    """Complete version-days without a rollup, plus those whose rollup is stale (`_stale`), oldest first
    per version; rows of today are never rolled up. Days without traffic get no rollup."""
    first_of_today = day_bounds(now.astimezone(UTC).date())[0]
    rolled = sa.select(R.c.model_name, R.c.model_version, R.c.day, R.c.final, R.c.computed_at)
    if models is not None:
        rolled = rolled.where(R.c.model_name.in_(models))
    done = {(r.model_name, r.model_version, r.day): r for r in conn.execute(rolled)}
    out: list[tuple[str, str, date]] = []
    for name, version in log_versions(conn, models):
        at = first_time(conn, name, version, EPOCH_TIME)
        while at is not None and at < first_of_today:
            day = at.date()
            stored = done.get((name, version, day))
            if stored is None or _stale(stored.final, stored.computed_at, day, now):
                out.append((name, version, day))
            at = first_time(conn, name, version, day_bounds(day)[1])
    return out


@dataclass
class RollupReport:
    completed: int = 0  # version-days stored
    rows: int = 0  # rows read
    finished: bool = True  # False: stopped by the budget, the next run continues


def _key(model_name: str, model_version: str, day: date) -> tuple[sa.ColumnElement[bool], ...]:
    return (PROGRESS.c.model_name == model_name, PROGRESS.c.model_version == model_version,
            PROGRESS.c.day == day)  # fmt: skip


def _resume(
    engine: sa.Engine, name: str, version: str, day: date
) -> tuple[DayStats, tuple[datetime, str] | None]:
    with engine.connect() as conn:
        saved = conn.execute(sa.select(PROGRESS).where(*_key(name, version, day))).first()
    if saved is None:
        return DayStats(seed=day.toordinal()), None
    return DayStats.from_state(saved.state), (saved.after_created_at, saved.after_id)


def _save(
    engine: sa.Engine, name: str, version: str, day: date, stats: DayStats, after: tuple[datetime, str]
) -> None:
    values = {
        "after_created_at": after[0],
        "after_id": after[1],
        "state": stats.to_state(),
        "updated_at": utcnow(),
    }
    with engine.begin() as conn:
        if not conn.execute(sa.update(PROGRESS).where(*_key(name, version, day)).values(**values)).rowcount:
            conn.execute(
                sa.insert(PROGRESS).values(model_name=name, model_version=version, day=day, **values)
            )


def _roll_up_within(
    engine: sa.Engine,
    name: str,
    version: str,
    day: date,
    out_of_budget: Any,
    chunk_rows: int,
    report: RollupReport,
    now: datetime,
) -> bool:
    """One version-day, chunk by chunk; True once stored, False when the budget stopped it (state saved)."""
    stats, after = _resume(engine, name, version, day)
    while True:
        with engine.connect() as conn:  # one short read per chunk
            rows = conn.execute(_chunk(name, version, day, after, chunk_rows)).all()
        if rows:
            stats.add([r[2:] for r in rows])
            after = (rows[-1][0], rows[-1][1])
            report.rows += len(rows)
        if len(rows) < chunk_rows:
            with engine.begin() as conn:
                store_day(conn, name, version, day, stats, computed_at=now)
                conn.execute(sa.delete(PROGRESS).where(*_key(name, version, day)))
            return True
        if out_of_budget():
            assert after is not None
            _save(engine, name, version, day, stats, after)
            return False


def roll_up_pending(
    engine: sa.Engine,
    *,
    now: datetime | None = None,
    models: Collection[str] | None = None,
    max_seconds: float | None = None,
    max_rows: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> RollupReport:
    """Every pending version-day (of `models`, default all), oldest first, within the budget."""
    now = now or utcnow()
    started, report = clock.monotonic(), RollupReport()

    def out_of_budget() -> bool:
        return (max_seconds is not None and clock.monotonic() - started >= max_seconds) or (
            max_rows is not None and report.rows >= max_rows
        )

    with engine.connect() as conn:
        pending = pending_days(conn, now, models)
    with engine.begin() as conn:  # a saved day that retention has since finalized is not continued
        saved = conn.execute(sa.select(PROGRESS.c.model_name, PROGRESS.c.model_version, PROGRESS.c.day)).all()
        for name, version, day in set(map(tuple, saved)) - set(pending):
            if models is None or name in models:
                conn.execute(sa.delete(PROGRESS).where(*_key(name, version, day)))
    for name, version, day in pending:
        if not _roll_up_within(engine, name, version, day, out_of_budget, chunk_rows, report, now):
            report.finished = False
            return report
        report.completed += 1
        if out_of_budget() and (name, version, day) != pending[-1]:
            report.finished = False
            return report
    return report


def run_rollups(
    engine: sa.Engine,
    *,
    now: datetime | None = None,
    models: Collection[str] | None = None,
    max_seconds: float | None = None,
) -> int:
    """Every pending version-day, each read in short chunks; returns how many were stored."""
    return roll_up_pending(engine, now=now, models=models, max_seconds=max_seconds).completed
