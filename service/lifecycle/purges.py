"""What retention records when it removes a version's rows, whichever way (a delete batch or a whole day
partition), in the caller's transaction: the days rolled up and made final, the stored runs whose window
lost rows marked `rows_deleted_at`, and the rows counted in `retention_purges`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from service.db.lifecycle_tables import PredictionRollup, RetentionPurge
from service.db.tables import DriftRun
from service.lifecycle.rollups import roll_up

RUNS = DriftRun.__table__  # type: ignore[attr-defined]
ROLL = PredictionRollup.__table__  # type: ignore[attr-defined]
PURGE = RetentionPurge.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Removed:
    """One version's rows about to be removed: how many, and the time spans they cover."""

    model_name: str
    model_version: str
    rows: int
    labeled: int
    first_created: datetime
    last_created: datetime
    first_received: datetime | None  # None: no labeled row among them
    last_received: datetime | None


def finalize_days(conn: sa.Connection, model_name: str, model_version: str, days: Iterable[date]) -> None:
    """Roll up any of `days` not rolled up yet (the rollup job runs first; this covers a day it has not
    reached), then mark them final: never recomputed from the rows left."""
    days = sorted(set(days))
    key = (ROLL.c.model_name == model_name, ROLL.c.model_version == model_version, ROLL.c.day.in_(days))
    rolled = set(conn.execute(sa.select(ROLL.c.day).where(*key)).scalars())
    for day in days:
        if day not in rolled:
            roll_up(conn, model_name, model_version, day)
    conn.execute(sa.update(ROLL).where(*key).values(final=True))


def mark_runs(
    conn: sa.Connection,
    model_name: str,
    model_version: str,
    kind: str,
    lo: datetime,
    hi: datetime,
    now: datetime,
) -> int:
    """Stored runs of `kind` whose window overlaps [lo, hi]: their result stands, it cannot be recomputed."""
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


def count(conn: sa.Connection, r: Removed, now: datetime) -> None:
    key = (PURGE.c.model_name == r.model_name, PURGE.c.model_version == r.model_version)
    updated = conn.execute(
        sa.update(PURGE)
        .where(*key)
        .values(
            rows_deleted=PURGE.c.rows_deleted + r.rows,
            labeled_deleted=PURGE.c.labeled_deleted + r.labeled,
            last_created_at=sa.case(
                (PURGE.c.last_created_at > r.last_created, PURGE.c.last_created_at), else_=r.last_created
            ),
            updated_at=now,
        )
    ).rowcount
    if not updated:
        conn.execute(
            sa.insert(PURGE).values(
                model_name=r.model_name, model_version=r.model_version, rows_deleted=r.rows,
                labeled_deleted=r.labeled, last_created_at=r.last_created, updated_at=now,
            )
        )  # fmt: skip


def record(conn: sa.Connection, r: Removed, days: Iterable[date], now: datetime) -> int:
    """Everything retention records for `r` but the count (`count`, once the rows are gone); returns how
    many runs were marked."""
    finalize_days(conn, r.model_name, r.model_version, days)
    marked = mark_runs(conn, r.model_name, r.model_version, "drift", r.first_created, r.last_created, now)
    if r.first_received is not None and r.last_received is not None:
        marked += mark_runs(
            conn, r.model_name, r.model_version, "performance", r.first_received, r.last_received, now
        )
    return marked
