"""Deterministic windows over the traffic of one model version.

Row windows are consecutive, non-overlapping blocks of N rows in commit order: drift blocks over the
version's predictions (`predictions.seq`), performance blocks over its labeled predictions in label
arrival order (`feedback.seq`). Blocks are cut only below the settled watermark (monitor/settled.py), under
which no transaction can still add or remove a row, so a cut block is final: it is resolved to its first
and last `seq`, read as that range, and a checked block's rows never change. Time windows are fixed buckets
aligned to the Unix epoch (drift by `created_at`, performance by `received_at`, both stamped by the store
inside the writing transaction), checked once the settled time passes their end and read up to the
sequence visible then (the `seq_horizon` in the run).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from service.db.tables import Feedback, Prediction

P = Prediction.__table__  # type: ignore[attr-defined]
F = Feedback.__table__  # type: ignore[attr-defined]
KINDS = ("drift", "performance")
_KEY_MAX = 300


@dataclass(frozen=True)
class Window:
    """Which rows a check reads: a row block (offset/limit, resolved to seq first..last) or a time range
    [start, end) (up to seq_horizon). `skipped`: unchecked windows before this one that
    `window_backlog=latest` gave up on."""

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
    first_seq: int | None = None
    last_seq: int | None = None
    seq_horizon: int | None = None
    skipped: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "index": self.index,
            "offset": self.offset,
            "limit": self.limit,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "seq_horizon": self.seq_horizon,
            "skipped_windows": self.skipped,
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


def seq_column(kind: str) -> sa.ColumnElement[int]:
    """The commit order a kind's windows follow."""
    column: sa.ColumnElement[int] = P.c.seq if kind == "drift" else F.c.seq
    return column


def order_by(kind: str) -> tuple[sa.ColumnElement[Any], ...]:
    return (seq_column(kind),)


def base_from(kind: str) -> sa.FromClause:
    source: sa.FromClause = P if kind == "drift" else P.join(F, F.c.prediction_id == P.c.id)
    return source


def version_filter(model_name: str, model_version: str) -> sa.ColumnElement[bool]:
    return sa.and_(P.c.model_name == model_name, P.c.model_version == model_version)


def _upto(kind: str, upto: int | None) -> sa.ColumnElement[bool]:
    return sa.true() if upto is None else seq_column(kind) <= upto


def count_rows(
    conn: sa.Connection, kind: str, model_name: str, model_version: str, upto: int | None = None
) -> int:
    """The version's rows of `kind` (with `seq` <= `upto`, when given)."""
    stmt = (
        sa.select(sa.func.count())
        .select_from(base_from(kind))
        .where(version_filter(model_name, model_version), _upto(kind, upto))
    )
    return int(conn.execute(stmt).scalar_one())


def window_filter(window: Window) -> sa.ColumnElement[bool]:
    """The rows of a window, apart from the OFFSET of an unresolved row block."""
    where = [version_filter(window.model_name, window.model_version)]
    seq = seq_column(window.kind)
    if window.first_seq is not None and window.last_seq is not None:
        where.append(seq.between(window.first_seq, window.last_seq))
    if window.start is not None and window.end is not None:
        col = time_column(window.kind)
        where += [col >= window.start, col < window.end]
    if window.seq_horizon is not None:
        where.append(seq <= window.seq_horizon)
    return sa.and_(*where)


def count_range(conn: sa.Connection, window: Window) -> int:
    stmt = sa.select(sa.func.count()).select_from(base_from(window.kind)).where(window_filter(window))
    return int(conn.execute(stmt).scalar_one())


def max_seq(conn: sa.Connection, kind: str, model_name: str, model_version: str) -> int:
    """The highest `seq` of the version's rows of `kind` visible now (0 without rows)."""
    seq = seq_column(kind)
    stmt = (
        sa.select(sa.func.coalesce(sa.func.max(seq), 0))
        .select_from(base_from(kind))
        .where(version_filter(model_name, model_version))
    )
    return int(conn.execute(stmt).scalar_one())


def edge_seqs(
    conn: sa.Connection, kind: str, where: sa.ColumnElement[bool], positions: list[int]
) -> list[int]:
    """`seq` of the rows matching `where` at `positions` (ascending) in commit order, fewer when the rows
    run out. Each is found from the one before it, so the index is scanned once up to the last position
    and no `seq` in between is sent (1M of them cost ~1 s in Python, the scan ~0.1 s)."""
    seq, last_pos = seq_column(kind), 0
    out: list[int] = []
    for p in positions:
        skip, cond = (p, where) if not out else (p - last_pos, sa.and_(where, seq >= out[-1]))
        stmt = sa.select(seq).select_from(base_from(kind)).where(cond).order_by(seq).offset(skip).limit(1)
        found = conn.execute(stmt).scalar_one_or_none()
        if found is None:
            break
        out.append(int(found))
        last_pos = p
    return out


def resolve_blocks(conn: sa.Connection, blocks: list[Window], upto: int | None = None) -> list[Window]:
    """Row blocks (consecutive or not) with their first and last `seq` among the rows with `seq` <=
    `upto`; only the blocks' edges are read."""
    if not blocks:
        return blocks
    head = blocks[0]
    where = sa.and_(version_filter(head.model_name, head.model_version), _upto(head.kind, upto))
    edges = sorted({p for b in blocks for p in ((b.offset or 0), (b.offset or 0) + (b.limit or 0) - 1)})
    found = dict(zip(edges, edge_seqs(conn, head.kind, where, edges), strict=False))
    out = []
    for b in blocks:
        first, last = (b.offset or 0), (b.offset or 0) + (b.limit or 0) - 1
        if last not in found:
            raise LookupError(f"window {b.key} is not complete: {last + 1} rows needed, fewer visible")
        out.append(replace(b, first_seq=found[first], last_seq=found[last]))
    return out


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
    state: dict[str, int] | None = None,
) -> Window:
    """A window asked for by a person: a time range, or the last N settled rows (keyed by their offset).
    `state`: the monitor's, whose last settled watermark stands when a new one cannot settle now."""
    from service.monitor.settled import settled

    known = {} if state is None else state
    mark = settled(conn, kind=kind, model_name=model_name, model_version=model_version, state=known)
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
            seq_horizon=max_seq(conn, kind, model_name, model_version),
        )
    n = last_n or default_rows
    total = count_rows(conn, kind, model_name, model_version, mark.seq)
    offset = max(0, total - n)
    window = Window(
        kind,
        model_name,
        model_version,
        "last",
        make_key(kind, model_name, model_version, "last", offset, total - offset),
        offset=offset,
        limit=total - offset,
    )
    return resolve_blocks(conn, [window], mark.seq)[0] if total > offset else window


def select_window(window: Window, columns: list[sa.ColumnElement[Any]]) -> sa.Select[Any]:
    """SELECT `columns` of the window's rows in window order."""
    stmt = (
        sa.select(*columns)
        .select_from(base_from(window.kind))
        .where(window_filter(window))
        .order_by(*order_by(window.kind))
    )
    if window.limit is not None and window.first_seq is None:
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
    """First and last row time of the window (a time window's own span when it has one)."""
    if window.start is not None and window.end is not None:
        return window.start, window.end
    if window.first_seq is not None and window.last_seq is not None:  # no OFFSET, no ORDER BY
        t, seq = time_column(window.kind), seq_column(window.kind)
        version = version_filter(window.model_name, window.model_version)
        times = sa.select(t.label("t")).select_from(base_from(window.kind))
        beyond = [times.where(version, seq < window.first_seq), times.where(version, seq > window.last_seq)]
        stmt = sa.select(sa.func.min(t), sa.func.max(t)).select_from(base_from(window.kind))
        if any(conn.execute(sa.select(*(r.exists() for r in beyond))).one()):
            # min/max over the block's own rows (OFFSET 0 keeps the planner from walking the time index
            # from its ends past every row of the rest: seconds for a 1M-row block of 10M)
            span = times.where(window_filter(window)).offset(0).subquery()
            stmt = sa.select(sa.func.min(span.c.t), sa.func.max(span.c.t))
        else:  # the block is all the version's rows: the time index's first and last entries
            stmt = stmt.where(window_filter(window))
        first, last = conn.execute(stmt).one()
        return first, last
    rows = select_window(window, [time_column(window.kind).label("t")]).subquery()
    lo, hi = conn.execute(sa.select(sa.func.min(rows.c.t), sa.func.max(rows.c.t))).one()
    return lo, hi
