"""How far the champion's traffic is toward its next drift window ("601 / 1000 rows") and its labels
toward the next performance window ("120 / 500 labeled rows"), or the time left.

A row window is the N rows after the last checked block (monitor/chain.py), so the count starts after the
newest scheduled row-block run's `last_seq` and stops at N: an index range read of at most N rows,
whatever the size of the log. A performance block is the N labeled rows after the last checked one in
label arrival order (`feedback.seq`), counted up to N the way the monitor counts them. A time window is
the current epoch-aligned bucket (labels by `received_at`), checked at the first tick after it ends (and
settles, monitor/settled.py); its rows are counted up to `ROW_CAP`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

import orjson
import sqlalchemy as sa

from service.config import Settings
from service.db.tables import DriftRun, utcnow
from service.monitor.windows import F, P, base_from, row_block, version_filter

R = DriftRun.__table__  # type: ignore[attr-defined]
RECENT_RUNS = 50  # the runs looked at for the newest checked block (as the monitor's cold start does)
ROW_CAP = 100_000  # a time bucket's rows are counted up to this
SEQ_MAX = 2**63 - 1


def _anchor(conn: sa.Connection, name: str, version: str, rows: int, kind: str = "drift") -> int:
    """`seq` of the last row of the newest checked block of this size (0: none checked yet)."""
    stmt = (
        sa.select(R.c.window_key, R.c.summary)
        .where(R.c.model_name == name, R.c.model_version == version, R.c.kind == kind)
        .where(R.c.trigger == "schedule")
        .order_by(R.c.id.desc())
    )
    for limit in (1, RECENT_RUNS):  # the newest run is the usual answer: read more summaries only if not
        for key, summary in conn.execute(stmt.limit(limit)).all():
            window = orjson.loads(summary).get("window") or {}
            index, last = window.get("index"), window.get("last_seq")
            if window.get("mode") != "rows" or not isinstance(index, int) or not isinstance(last, int):
                continue
            if row_block(kind, name, version, rows, index).key == key:
                return last
    return 0


def index_range(
    name: str, version: str, column: sa.ColumnElement[Any], lo: Any, hi: Any, *, cap: int
) -> sa.Select[Any]:
    """The version's rows with lo < column <= hi (`seq`) or lo <= column < hi (`created_at`), at most
    `cap`, read as one range of the (model_name, model_version, column) index.

    Written as a row-value range ordered like that index: with `model_name = ...` and `seq > ...` apart,
    PostgreSQL takes the unique `seq` index under LIMIT and filters every other model's rows after `lo`,
    millions for a quiet model beside a busy one.
    """
    key = sa.tuple_(P.c.model_name, P.c.model_version, column)

    def at(value: Any) -> sa.Tuple:
        return sa.tuple_(sa.literal(name, P.c.model_name.type), sa.literal(version, P.c.model_version.type),
                         sa.literal(value, column.type))  # fmt: skip

    where = (
        sa.and_(key > at(lo), key <= at(hi)) if column is P.c.seq else sa.and_(key >= at(lo), key < at(hi))
    )
    return sa.select(P.c.id).where(where).order_by(P.c.model_name, P.c.model_version, column).limit(cap)


def _count(conn: sa.Connection, rows: sa.Select[Any]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(rows.subquery())).scalar_one())


def labeled_range(
    name: str, version: str, column: sa.ColumnElement[Any], lo: Any, hi: Any, *, cap: int
) -> sa.Select[Any]:
    """The version's labeled rows with lo < feedback.seq <= hi (`seq`) or lo <= received_at < hi, at
    most `cap`: the rows the monitor counts for its next performance block (monitor/chain.py)."""
    col = F.c.seq if column is F.c.seq else F.c.received_at
    where = sa.and_(col > lo, col <= hi) if column is F.c.seq else sa.and_(col >= lo, col < hi)
    stmt = (
        sa.select(F.c.seq).select_from(base_from("performance")).where(version_filter(name, version), where)
    )
    return stmt.order_by(col).limit(cap)


def next_window(
    engine: sa.Engine,
    *,
    name: str,
    version: str | None,
    settings: Settings,
    now: datetime | None = None,
    kind: str = "drift",
) -> dict[str, Any] | None:
    """The champion's progress toward its next window of `kind` (drift: its predictions; performance:
    its labeled predictions); None without a champion."""
    if version is None:
        return None
    now = now or utcnow()
    drift = kind == "drift"
    rows_in = index_range if drift else labeled_range
    with engine.connect() as conn:
        if settings.window_kind == "rows":
            size = settings.window_rows if drift else settings.performance_window_rows
            anchor = _anchor(conn, name, version, size, kind)
            seq = P.c.seq if drift else F.c.seq
            rows = _count(conn, rows_in(name, version, seq, anchor, SEQ_MAX, cap=size))
            return {"kind": kind, "mode": "rows", "model_version": version, "rows": rows, "size": size,
                    "complete": rows >= size, "after_seq": anchor}  # fmt: skip
        seconds = settings.window_seconds
        index = math.floor(now.timestamp() / seconds)
        start = datetime.fromtimestamp(index * seconds, tz=UTC)
        end = start + timedelta(seconds=seconds)
        column = P.c.created_at if drift else F.c.received_at
        rows = _count(conn, rows_in(name, version, column, start, end, cap=ROW_CAP))
    return {
        "kind": kind,
        "mode": "time",
        "model_version": version,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "seconds_left": max(0.0, (end - now).total_seconds()),
        "rows": rows,
        "rows_capped": rows >= ROW_CAP,
    }


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{s} s"


def progress_text(progress: dict[str, Any] | None) -> str:
    """One line: '601 / 1000 rows', '120 / 500 labeled rows' or '12 min 05 s left (340 rows so far)'."""
    if progress is None:
        return "no champion loaded"
    unit = "rows" if progress.get("kind", "drift") == "drift" else "labeled rows"
    if progress["mode"] == "rows":
        text = f"{progress['rows']} / {progress['size']} {unit}"
        return text + " (complete: checked at the next tick)" if progress["complete"] else text
    more = "+" if progress["rows_capped"] else ""
    return f"{_duration(progress['seconds_left'])} left ({progress['rows']}{more} {unit} so far)"


def render_progress(progress: dict[str, Any] | None, kind: str = "drift") -> str:
    """The page's line for the next drift (id next-window) or performance (id next-label-window) window."""
    ident, what = ("next-window", "drift") if kind == "drift" else ("next-label-window", "performance")
    if progress is None:
        return f'<p id="{ident}" class="muted">Next {what} window: no champion loaded.</p>'
    bar = ""
    if progress["mode"] == "rows":
        bar = (
            f' <progress max="{progress["size"]}" value="{min(progress["rows"], progress["size"])}">'
            "</progress>"
        )
    return (
        f'<p id="{ident}" data-mode="{progress["mode"]}" data-rows="{progress["rows"]}" '
        f'data-size="{progress.get("size", "")}">Next {what} window of version '
        f"{escape(progress['model_version'])}: <strong>{escape(progress_text(progress))}</strong>{bar}</p>"
    )
