"""How far the champion's traffic is toward its next drift window: "601 / 1000 rows", or the time left.

A row window is the N rows after the last checked block (monitor/chain.py), so the count starts after the
newest scheduled row-block run's `last_seq` and stops at N: an index range read of at most N rows,
whatever the size of the log. A time window is the current epoch-aligned bucket, checked at the first tick
after it ends (and settles, monitor/settled.py); its rows are counted up to `ROW_CAP`.
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
from service.monitor.windows import P, row_block

R = DriftRun.__table__  # type: ignore[attr-defined]
RECENT_RUNS = 50  # the runs looked at for the newest checked block (as the monitor's cold start does)
ROW_CAP = 100_000  # a time bucket's rows are counted up to this
SEQ_MAX = 2**63 - 1


def _anchor(conn: sa.Connection, name: str, version: str, rows: int) -> int:
    """`seq` of the last row of the newest checked block of this size (0: none checked yet)."""
    stmt = (
        sa.select(R.c.window_key, R.c.summary)
        .where(R.c.model_name == name, R.c.model_version == version, R.c.kind == "drift")
        .where(R.c.trigger == "schedule")
        .order_by(R.c.id.desc())
    )
    for limit in (1, RECENT_RUNS):  # the newest run is the usual answer: read more summaries only if not
        for key, summary in conn.execute(stmt.limit(limit)).all():
            window = orjson.loads(summary).get("window") or {}
            index, last = window.get("index"), window.get("last_seq")
            if window.get("mode") != "rows" or not isinstance(index, int) or not isinstance(last, int):
                continue
            if row_block("drift", name, version, rows, index).key == key:
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


def next_window(
    engine: sa.Engine, *, name: str, version: str | None, settings: Settings, now: datetime | None = None
) -> dict[str, Any] | None:
    """The champion's progress toward its next drift window (None without a champion)."""
    if version is None:
        return None
    now = now or utcnow()
    with engine.connect() as conn:
        if settings.window_kind == "rows":
            size = settings.window_rows
            anchor = _anchor(conn, name, version, size)
            rows = _count(conn, index_range(name, version, P.c.seq, anchor, SEQ_MAX, cap=size))
            return {"mode": "rows", "model_version": version, "rows": rows, "size": size,
                    "complete": rows >= size, "after_seq": anchor}  # fmt: skip
        seconds = settings.window_seconds
        index = math.floor(now.timestamp() / seconds)
        start = datetime.fromtimestamp(index * seconds, tz=UTC)
        end = start + timedelta(seconds=seconds)
        rows = _count(conn, index_range(name, version, P.c.created_at, start, end, cap=ROW_CAP))
    return {
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
    """One line: '601 / 1000 rows' or '12 min 05 s left (340 rows so far)'."""
    if progress is None:
        return "no champion loaded"
    if progress["mode"] == "rows":
        text = f"{progress['rows']} / {progress['size']} rows"
        return text + " (complete: checked at the next tick)" if progress["complete"] else text
    more = "+" if progress["rows_capped"] else ""
    return f"{_duration(progress['seconds_left'])} left ({progress['rows']}{more} rows so far)"


def render_progress(progress: dict[str, Any] | None) -> str:
    if progress is None:
        return '<p id="next-window" class="muted">Next window: no champion loaded.</p>'
    bar = ""
    if progress["mode"] == "rows":
        bar = (
            f' <progress max="{progress["size"]}" value="{min(progress["rows"], progress["size"])}">'
            "</progress>"
        )
    return (
        f'<p id="next-window" data-mode="{progress["mode"]}" data-rows="{progress["rows"]}" '
        f'data-size="{progress.get("size", "")}">Next drift window of version '
        f"{escape(progress['model_version'])}: <strong>{escape(progress_text(progress))}</strong>{bar}</p>"
    )
