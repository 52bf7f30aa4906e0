"""Retention's delete batches: the oldest deletable rows of one version, a few thousand per short
transaction, with their labels and records (SQLite's only way; on PostgreSQL what whole days leave);
and retention's pacing (`Pace`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from service.db.tables import Feedback, Prediction, utcnow
from service.lifecycle.keep import Bounds, deletable
from service.lifecycle.partitions import one_process
from service.lifecycle.purges import Removed, count, record

P = Prediction.__table__  # type: ignore[attr-defined]
F = Feedback.__table__  # type: ignore[attr-defined]


@dataclass
class Pace:
    """Retention's share of the machine and its time budget. After each step (a delete batch; a day
    partition's count, copy or swap) a pause of `rest_ratio` times the step's own wall time, at least
    `pause_s`: retention works at most 1 / (1 + rest_ratio) of the time, in steps of well under a
    second, and backs off by itself when a loaded machine makes its steps slower."""

    pause_s: float
    rest_ratio: float
    max_seconds: float
    started: float = field(default_factory=time.monotonic)
    worked: float = 0.0  # seconds spent in steps

    @contextmanager
    def step(self) -> Iterator[None]:
        t = time.monotonic()
        yield
        spent = time.monotonic() - t
        self.worked += spent
        time.sleep(max(self.pause_s, spent * self.rest_ratio))

    def out_of_time(self) -> bool:
        return time.monotonic() - self.started > self.max_seconds


@dataclass
class RetentionReport:
    deleted: int = 0
    labeled_deleted: int = 0
    batches: int = 0
    runs_marked: int = 0
    rollups: int = 0
    finished: bool = True  # False: stopped by the time budget, the next run continues
    worked_s: float = 0.0  # time in deletion steps (the rest of the run was pauses and planning)
    per_version: dict[tuple[str, str], int] = field(default_factory=dict)
    held: list[tuple[str, str]] = field(default_factory=list)  # labeled rows kept (row windows)
    partitions_created: list[date] = field(default_factory=list)
    days_dropped: list[date] = field(default_factory=list)
    days_replaced: list[date] = field(default_factory=list)
    days_deferred: list[date] = field(default_factory=list)

    def add(self, r: Removed) -> None:
        self.deleted += r.rows
        self.labeled_deleted += r.labeled
        key = (r.model_name, r.model_version)
        self.per_version[key] = self.per_version.get(key, 0) + r.rows


def _eligible(
    model_name: str, model_version: str, b: Bounds, after: tuple[datetime, str] | None, limit: int, table: Any
) -> sa.Select[Any]:
    c = table.c
    stmt = (
        sa.select(c.id, c.created_at, F.c.prediction_id.isnot(None).label("labeled"), F.c.received_at)
        .select_from(table.outerjoin(F, F.c.prediction_id == c.id))
        .where(deletable(table, F, model_name, model_version, b))
        .order_by(c.created_at, c.id)
        .limit(limit)
    )
    if after is not None:
        # the plain range lets the index start at the last batch (never re-walking deleted, unvacuumed rows)
        stmt = stmt.where(
            c.created_at >= after[0],
            sa.or_(c.created_at > after[0], sa.and_(c.created_at == after[0], c.id > after[1])),
        )
    return stmt


def delete_batch(
    conn: sa.Connection,
    model_name: str,
    model_version: str,
    b: Bounds,
    after: tuple[datetime, str] | None,
    limit: int,
    report: RetentionReport,
    table: Any = P,
) -> tuple[datetime, str] | None:
    """One batch in the caller's transaction, from `table` (the predictions table or one partition);
    returns the last row's key, or None when nothing is left."""
    one_process(conn)
    rows = conn.execute(_eligible(model_name, model_version, b, after, limit, table)).all()
    if not rows:
        return None
    now = utcnow()
    ids = [r.id for r in rows]
    labeled = [r for r in rows if r.labeled]
    received = [r.received_at for r in labeled]
    batch = Removed(
        model_name, model_version, len(rows), len(labeled), rows[0].created_at, rows[-1].created_at,
        min(received) if received else None, max(received) if received else None,
    )  # fmt: skip
    report.runs_marked += record(conn, batch, {r.created_at.astimezone(UTC).date() for r in rows}, now)
    # counted by what each DELETE removed: an overlapping run (a lapsed SQLite lease) never counts twice
    n_labeled = 0
    if labeled:
        n_labeled = _rowcount(
            conn.execute(sa.delete(F).where(_among(conn, F.c.prediction_id, [r.id for r in labeled])))
        )
    n_rows = _rowcount(conn.execute(sa.delete(table).where(_among(conn, table.c.id, ids))))
    done = replace(batch, rows=n_rows, labeled=n_labeled)
    count(conn, done, now)
    report.add(done)
    report.batches += 1
    return rows[-1].created_at, rows[-1].id


def _among(conn: sa.Connection, column: sa.ColumnElement[str], ids: list[str]) -> sa.ColumnElement[bool]:
    """`column IN ids`; one array parameter on PostgreSQL (thousands of bound values cost more to send
    and parse than the delete itself)."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.cast(sa.literal(ids, ARRAY(sa.Text())), ARRAY(sa.Text())))
    return column.in_(ids)


def _rowcount(result: sa.CursorResult[Any]) -> int:
    return int(result.rowcount or 0)
