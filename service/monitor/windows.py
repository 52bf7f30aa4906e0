"""Deterministic windows over the traffic of one model version.

Row windows are consecutive, non-overlapping blocks of N rows in (time, id) order: block k holds rows
k*N .. (k+1)*N-1, so the same block always means the same rows and a check is idempotent per block. Time
windows are fixed buckets aligned to the Unix epoch. Drift windows order predictions by `created_at`;
performance windows order labeled predictions by label arrival (`feedback.received_at`), which only grows.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from service.db.tables import Feedback, Prediction

P = Prediction.__table__  # type: ignore[attr-defined]
F = Feedback.__table__  # type: ignore[attr-defined]
KINDS = ("drift", "performance")
# a time bucket is checked only this long after it ends, so rows committed a little late are in it
SETTLE_SECONDS = 5.0
_KEY_MAX = 300


@dataclass(frozen=True)
class Window:
    """Which rows a check reads: a row block (offset/limit) or a time range [start, end)."""

    kind: str
    model_name: str
    model_version: str
    mode: str  # rows | time | range | last
    key: str
    offset: int | None = None
    limit: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    index: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "index": self.index,
            "offset": self.offset,
            "limit": self.limit,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
        }


def make_key(*parts: object) -> str:
    """`drift_runs.window_key`; long model names are hashed to fit the column."""
    key = ":".join(str(p) for p in parts)
    if len(key) <= _KEY_MAX:
        return key
    return key[:200] + ":" + hashlib.sha256(key.encode()).hexdigest()


def time_column(kind: str) -> sa.ColumnElement[Any]:
    column: sa.ColumnElement[Any] = P.c.created_at if kind == "drift" else F.c.received_at
    return column


def order_by(kind: str) -> tuple[sa.ColumnElement[Any], ...]:
    return (P.c.created_at, P.c.id) if kind == "drift" else (F.c.received_at, F.c.prediction_id)


def base_from(kind: str) -> sa.FromClause:
    source: sa.FromClause = P if kind == "drift" else P.join(F, F.c.prediction_id == P.c.id)
    return source


def version_filter(model_name: str, model_version: str) -> sa.ColumnElement[bool]:
    return sa.and_(P.c.model_name == model_name, P.c.model_version == model_version)


def count_rows(conn: sa.Connection, kind: str, model_name: str, model_version: str) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(base_from(kind))
        .where(version_filter(model_name, model_version))
    )
    return int(conn.execute(stmt).scalar_one())


def count_range(conn: sa.Connection, window: Window) -> int:
    assert window.start is not None and window.end is not None
    col = time_column(window.kind)
    stmt = (
        sa.select(sa.func.count())
        .select_from(base_from(window.kind))
        .where(version_filter(window.model_name, window.model_version), col >= window.start, col < window.end)
    )
    return int(conn.execute(stmt).scalar_one())


def row_block(kind: str, model_name: str, model_version: str, size: int, index: int) -> Window:
    return Window(
        kind,
        model_name,
        model_version,
        "rows",
        make_key(kind, model_name, model_version, "rows", size, index),
        offset=index * size,
        limit=size,
        index=index,
    )


def time_bucket(kind: str, model_name: str, model_version: str, seconds: float, index: int) -> Window:
    start = datetime.fromtimestamp(index * seconds, tz=UTC)
    return Window(
        kind,
        model_name,
        model_version,
        "time",
        make_key(kind, model_name, model_version, "time", seconds, index),
        start=start,
        end=start + timedelta(seconds=seconds),
        index=index,
    )


def due_windows(
    conn: sa.Connection,
    *,
    kind: str,
    model_name: str,
    model_version: str,
    mode: str,
    rows: int,
    seconds: float,
    catchup: int,
    now: datetime,
) -> list[Window]:
    """The newest `catchup` complete windows, oldest first (the caller skips those already checked)."""
    if mode == "rows":
        complete = count_rows(conn, kind, model_name, model_version) // rows
        first = max(0, complete - catchup)
        return [row_block(kind, model_name, model_version, rows, i) for i in range(first, complete)]
    last = math.floor((now.timestamp() - SETTLE_SECONDS) / seconds) - 1
    return [
        time_bucket(kind, model_name, model_version, seconds, i) for i in range(last - catchup + 1, last + 1)
    ]


def manual_window(
    conn: sa.Connection,
    *,
    kind: str,
    model_name: str,
    model_version: str,
    start: datetime | None,
    end: datetime | None,
    last_n: int | None,
    default_rows: int,
) -> Window:
    """A window asked for by a person: a time range, or the last N rows as of now (keyed by their offset)."""
    if start is not None or end is not None:
        lo = start or datetime(1970, 1, 1, tzinfo=UTC)
        hi = end or datetime.now(UTC)
        return Window(
            kind,
            model_name,
            model_version,
            "range",
            make_key(kind, model_name, model_version, "range", lo.isoformat(), hi.isoformat()),
            start=lo,
            end=hi,
        )
    n = last_n or default_rows
    total = count_rows(conn, kind, model_name, model_version)
    offset = max(0, total - n)
    return Window(
        kind,
        model_name,
        model_version,
        "last",
        make_key(kind, model_name, model_version, "last", offset, total - offset),
        offset=offset,
        limit=total - offset,
    )


def select_window(window: Window, columns: list[sa.ColumnElement[Any]]) -> sa.Select[Any]:
    """SELECT `columns` of the window's rows in window order."""
    stmt = (
        sa.select(*columns)
        .select_from(base_from(window.kind))
        .where(version_filter(window.model_name, window.model_version))
        .order_by(*order_by(window.kind))
    )
    if window.start is not None and window.end is not None:
        col = time_column(window.kind)
        stmt = stmt.where(col >= window.start, col < window.end)
    if window.limit is not None:
        stmt = stmt.limit(window.limit).offset(window.offset or 0)
    return stmt


def latest_version(conn: sa.Connection, model_name: str) -> str | None:
    """The version of the most recent prediction (the fallback when the registry is unreachable)."""
    stmt = (
        sa.select(P.c.model_version)
        .where(P.c.model_name == model_name)
        .order_by(P.c.created_at.desc())
        .limit(1)
    )
    return conn.execute(stmt).scalar_one_or_none()


def bounds(conn: sa.Connection, window: Window) -> tuple[datetime | None, datetime | None]:
    """First and last row time of the window (a time window's own span when it has one).

    A row block's edge times are read ordering by time alone: rows tied on time share the value, so this
    equals the (time, id) order's edges and uses the index only.
    """
    if window.start is not None and window.end is not None:
        return window.start, window.end
    col = time_column(window.kind)
    base = (
        sa.select(col)
        .select_from(base_from(window.kind))
        .where(version_filter(window.model_name, window.model_version))
        .order_by(col)
        .limit(1)
    )
    first = window.offset or 0
    last = first + (window.limit or 1) - 1
    lo = conn.execute(base.offset(first)).scalar_one_or_none()
    hi = conn.execute(base.offset(last)).scalar_one_or_none()
    return lo, hi or lo
