"""How far the champion's traffic is toward its next drift window ("601 / 1000 rows") and its labels
toward the next performance window ("120 / 500 labeled rows"), or the time left.

A row window is the N rows after the last checked block (monitor/chain.py), so the count starts after the
newest scheduled row-block run's `last_seq` and stops at N: an index range read of at most N rows,
whatever the size of the log. A performance block is the N labeled rows after the last checked one in
label arrival order (`feedback.seq`): they are looked for among the version's predictions of the newest
`SPAN_BUDGET` sequence numbers (labels of older ones are rare), and the line says "at least" when that walk
did not reach the version's first prediction and found fewer than N. A time window is
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
from service.monitor.windows import F, P, row_block

R = DriftRun.__table__  # type: ignore[attr-defined]
RECENT_RUNS = 50  # the runs looked at for the newest checked block (as the monitor's cold start does)
ROW_CAP = 100_000  # a time bucket's rows are counted up to this
SPAN = 5_000  # sequence numbers (predictions of every model) walked per read for a version's labels
SPAN_BUDGET = 200_000  # ... and at most this many in all
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


def _bounds(conn: sa.Connection, name: str, version: str, rows: int) -> tuple[int, int | None]:
    """(the version's newest `seq` or above, its oldest when known) from the rows after its last checked
    drift block: the drift line's own bounded read. When a whole block waits there, the newest `seq` of
    any model; the oldest is known when no block was checked yet (all its rows are in that read)."""
    anchor = _anchor(conn, name, version, rows)
    inner = (
        index_range(name, version, P.c.seq, anchor, SEQ_MAX, cap=rows).with_only_columns(P.c.seq).subquery()
    )
    n, top, first = conn.execute(
        sa.select(sa.func.count(), sa.func.max(inner.c.seq), sa.func.min(inner.c.seq))
    ).one()
    if n >= rows:
        top = conn.execute(sa.select(sa.func.max(P.c.seq))).scalar_one()
    oldest = (int(first) if n else SEQ_MAX) if anchor == 0 and n < rows else None
    return int(top or anchor), oldest


def _labels(
    conn: sa.Connection,
    name: str,
    version: str,
    where: sa.ColumnElement[bool],
    *,
    cap: int,
    drift_rows: int,
) -> tuple[int, bool]:
    """(labels matching `where` of the version's newest predictions, up to `cap`; whether every
    prediction of the version was looked at).

    Walked back from the version's newest `seq` in spans of `SPAN` sequence numbers (any model's), each
    one range of the (model_name, model_version, seq) index with a feedback key lookup per row, until `cap`
    labels are found or `SPAN_BUDGET` sequence numbers were walked; then it is a lower bound. A span
    bounds each read whatever plan PostgreSQL picks: it estimates a row-value range by its first column
    (~0 rows) and sorted the model's whole log under one LIMIT (0.5-1 s at 300k rows). Driven from the
    labels instead, each label of another model cost a lookup in every day partition (~1 s).
    """
    hi, oldest = _bounds(conn, name, version, drift_rows)
    found, floor = 0, 0 if oldest is None else oldest - 1  # below `floor`: none of the version's rows
    for _ in range(SPAN_BUDGET // SPAN):
        lo = max(hi - SPAN, floor)
        rows = index_range(name, version, P.c.seq, lo, hi, cap=SPAN).subquery()
        # a correlated primary-key lookup per row: a join may be hashed over the whole feedback table
        label = sa.select(F.c.seq).where(F.c.prediction_id == rows.c.id, where).limit(1).scalar_subquery()
        found += int(conn.execute(sa.select(sa.func.count(label)).select_from(rows)).scalar_one())
        if found >= cap:
            return cap, True
        if lo <= floor:
            return found, True
        hi = lo
    return found, False


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
    exact = True  # False: labels counted among the predictions of the newest SPAN_BUDGET seq only
    with engine.connect() as conn:
        if settings.window_kind == "rows":
            size = settings.window_rows if drift else settings.performance_window_rows
            anchor = _anchor(conn, name, version, size, kind)
            if drift:
                rows = _count(conn, index_range(name, version, P.c.seq, anchor, SEQ_MAX, cap=size))
            else:
                rows, exact = _labels(
                    conn, name, version, F.c.seq > anchor, cap=size, drift_rows=settings.window_rows
                )
            return {"kind": kind, "mode": "rows", "model_version": version, "rows": rows, "size": size,
                    "complete": rows >= size, "after_seq": anchor,
                    "at_least": not exact and rows < size}  # fmt: skip
        seconds = settings.window_seconds
        index = math.floor(now.timestamp() / seconds)
        start = datetime.fromtimestamp(index * seconds, tz=UTC)
        end = start + timedelta(seconds=seconds)
        if drift:
            rows = _count(conn, index_range(name, version, P.c.created_at, start, end, cap=ROW_CAP))
        else:
            received = sa.and_(F.c.received_at >= start, F.c.received_at < end)
            rows, exact = _labels(conn, name, version, received, cap=ROW_CAP, drift_rows=settings.window_rows)
    return {
        "kind": kind,
        "mode": "time",
        "model_version": version,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "seconds_left": max(0.0, (end - now).total_seconds()),
        "rows": rows,
        "rows_capped": rows >= ROW_CAP or not exact,
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
        least = "at least " if progress.get("at_least") else ""
        text = f"{least}{progress['rows']} / {progress['size']} {unit}"
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
