"""Retention by whole day partitions (PostgreSQL): a day whose rows mostly go is removed at once.

For each day partition that may hold deletable rows (oldest first), its rows and those the versions'
bounds let go (`keep.deletable`; a version without bounds keeps every row) are counted:
- none go: nothing to do;
- all go: the partition is dropped;
- at least as many go as stay (e.g. the unlabeled rows of a day past `retention_days`, its labeled rows
  kept for `labeled_retention_days`): the rows that stay are copied into a new table outside the lock,
  which then replaces the day (`partitions.replace_day`);
- fewer go than stay: the day is left to the delete batches (copying most of a day to drop a little of it
  costs more than deleting that little).
The replacement's transaction first checks that the rows that go have the labels they had when counted
(a label that arrived since makes the day wait for the next run), deletes the labels of the rows that
go, records them (`purges`), then swaps the tables under a short lock timeout. Rows, labels and records
change together.

Cost, paced (`batches.Pace`): a day is read in id spans of `CHUNK_ROWS` (its primary key cut by an
index-only walk), one short statement per span and step: the count, then the copy of what stays; each
span joins only its own labels (a range of the feedback key). A day of 333k rows is some 30 steps of
0.02-0.1 s instead of a few statements of a second each that would take a core from serving at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from service.db.tables import Feedback, utcnow
from service.lifecycle import partitions, purges
from service.lifecycle.batches import Pace
from service.lifecycle.keep import Bounds, deletable

log = logging.getLogger("driftloop.retention")
F = Feedback.__table__  # type: ignore[attr-defined]
CHUNK_ROWS = 25_000  # rows of a day read per step (its count, its copy): steps of 0.02-0.1 s


@dataclass
class DayOutcome:
    dropped: list[date] = field(default_factory=list)  # removed whole
    replaced: list[date] = field(default_factory=list)  # the rows that stay copied, the rest dropped
    left: list[str] = field(default_factory=list)  # tables (days and the default) for the delete batches
    deferred: list[date] = field(default_factory=list)  # lock or late labels: the next run retries
    removed: list[purges.Removed] = field(default_factory=list)
    runs_marked: int = 0


def _goes(part: sa.TableClause, plan: Mapping[tuple[str, str], Bounds]) -> sa.ColumnElement[bool]:
    return sa.or_(*[deletable(part, F, m, v, b) for (m, v), b in plan.items()])


@dataclass(frozen=True)
class Span:
    """Ids (after, upto] of a partition (None: open, so a row written since is in the first or last);
    its labels are read over the same range, the open ends closed by the partition's first and last id
    when it was cut (a label of a row outside them is caught by the replacement's label check)."""

    after: str | None
    upto: str | None
    first: str
    last: str

    def rows(self, column: sa.ColumnElement[str]) -> list[sa.ColumnElement[bool]]:
        out = [column > self.after] if self.after is not None else []
        return out + ([column <= self.upto] if self.upto is not None else [])

    def labels(self) -> list[sa.ColumnElement[bool]]:
        col = F.c.prediction_id
        lo = col > self.after if self.after is not None else col >= self.first
        return [lo, col <= self.upto if self.upto is not None else col <= self.last]


def _with_labels(part: sa.TableClause, span: Span) -> sa.Join:
    """`part` outer-joined with its labels, both read over one id span: prediction ids are time-ordered
    (UUIDv7), so a span's labels are one range of the feedback key, read by index instead of hashing
    every label of the log (any id format stays correct, only slower)."""
    return part.outerjoin(F, sa.and_(F.c.prediction_id == part.c.id, *span.labels()))


def spans(conn: sa.Connection, part: sa.TableClause, rows: int | None = None) -> list[Span]:
    """The partition's ids cut into spans of about `rows` (default CHUNK_ROWS; an index-only walk of its
    primary key)."""
    rows = rows or CHUNK_ROWS
    first, last = conn.execute(sa.select(sa.func.min(part.c.id), sa.func.max(part.c.id))).one()
    if first is None:
        return []
    cuts: list[str] = []
    while True:
        stmt = sa.select(part.c.id).order_by(part.c.id).offset(rows - 1).limit(1)
        if cuts:
            stmt = stmt.where(part.c.id > cuts[-1])
        cut = conn.execute(stmt).scalar()
        if cut is None or cut == last:
            break
        cuts.append(cut)
    bounds: list[str | None] = [None, *cuts, None]
    return [Span(a, b, first, last) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def count_span(
    conn: sa.Connection, part: sa.TableClause, plan: Mapping[tuple[str, str], Bounds], span: Span
) -> tuple[int, list[purges.Removed]]:
    """A span's row count and, per version, its rows that go: one read of the span."""
    partitions.one_process(conn, by_index=True)
    c = part.c
    rows = (
        sa.select(
            c.model_name, c.model_version, c.created_at, F.c.prediction_id, F.c.received_at,
            sa.func.coalesce(_goes(part, plan), sa.false()).label("goes"),
        )
        .select_from(_with_labels(part, span))
        .where(*span.rows(c.id))
        .subquery()
    )  # fmt: skip
    r, goes = rows.c, rows.c.goes  # the policy evaluated once per row, not once per aggregate
    stmt = sa.select(
        r.model_name, r.model_version, sa.func.count(),
        sa.func.count().filter(goes), sa.func.count(r.prediction_id).filter(goes),
        sa.func.min(r.created_at).filter(goes), sa.func.max(r.created_at).filter(goes),
        sa.func.min(r.received_at).filter(goes), sa.func.max(r.received_at).filter(goes),
    ).group_by(r.model_name, r.model_version)  # fmt: skip
    total, removed = 0, []
    for row in conn.execute(stmt):
        total += row[2]
        if row[3]:
            removed.append(purges.Removed(row[0], row[1], *row[3:]))
    return total, removed


def _merge(into: dict[tuple[str, str], purges.Removed], r: purges.Removed) -> None:
    had = into.get((r.model_name, r.model_version))
    if had is None:
        into[(r.model_name, r.model_version)] = r
        return

    def pick(f: Any, x: datetime | None, y: datetime | None) -> datetime | None:
        return f(v for v in (x, y) if v is not None) if x is not None or y is not None else None

    into[(r.model_name, r.model_version)] = purges.Removed(
        r.model_name, r.model_version, had.rows + r.rows, had.labeled + r.labeled,
        min(had.first_created, r.first_created), max(had.last_created, r.last_created),
        pick(min, had.first_received, r.first_received), pick(max, had.last_received, r.last_received),
    )  # fmt: skip


def count_day(
    engine: sa.Engine, part: sa.TableClause, plan: Mapping[tuple[str, str], Bounds], pace: Pace
) -> tuple[int, list[purges.Removed], list[Span]]:
    """The partition's row count and, per version, the rows that go, a span per step; and the spans."""
    with pace.step(), engine.connect() as conn:
        cut = spans(conn, part)
    total, removed = 0, dict[tuple[str, str], purges.Removed]()
    for span in cut:
        with pace.step(), engine.connect() as conn:
            n, going = count_span(conn, part, plan, span)
        total += n
        for r in going:
            _merge(removed, r)
    return total, list(removed.values()), cut


def candidates(engine: sa.Engine, plan: Mapping[tuple[str, str], Bounds]) -> list[tuple[date, str]]:
    """Day partitions that start before some version's bound, oldest first. A day already replaced holds
    what stayed (labeled rows, rows runs and jobs needed): it is counted again only once some version's
    labeled rows of that day may go, so the kept days are not re-read at every run (a row an episode or
    job held there goes with the day's labeled rows at the latest)."""
    latest = max(b.created for b in plan.values())
    labeled = [b.labeled_created for b in plan.values() if b.labeled_created is not None]
    with engine.connect() as conn:
        days = partitions.day_partitions(conn)
        replaced = partitions.replaced_days(conn)
    out = []
    for day, name in sorted(days.items()):
        start = partitions.bounds_of(day)[0]
        if start < latest and (day not in replaced or (labeled and start < max(labeled))):
            out.append((day, name))
    return out


def remove_days(
    engine: sa.Engine,
    plan: Mapping[tuple[str, str], Bounds],
    pace: Pace,
) -> DayOutcome:
    """Each candidate day in steps of the pace (count, copy, swap), until the run's time is up."""
    out = DayOutcome(left=[partitions.DEFAULT])
    if not plan:
        return out
    for day, name in candidates(engine, plan):
        if pace.out_of_time():
            out.deferred.append(day)
            continue
        part = partitions.table_of(name)
        total, removed, cut = count_day(engine, part, plan, pace)
        going = sum(r.rows for r in removed)
        if going == 0:
            continue
        if going < total - going:
            out.left.append(name)
            continue
        if _replace(engine, day, part, plan, removed, total - going, out, pace, cut):
            (out.dropped if going == total else out.replaced).append(day)
            out.removed += removed
        else:
            out.deferred.append(day)
    return out


def _replace(
    engine: sa.Engine,
    day: date,
    part: sa.TableClause,
    plan: Mapping[tuple[str, str], Bounds],
    removed: list[purges.Removed],
    staying: int,
    out: DayOutcome,
    pace: Pace,
    cut: list[Span],
) -> bool:
    kept_table = None
    if staying:  # copied a span per step, indexed once
        stays = sa.not_(sa.func.coalesce(_goes(part, plan), sa.false()))
        kept_table = partitions.new_kept(engine, day)
        for span in cut:
            rows = (
                sa.select(*part.c).select_from(_with_labels(part, span)).where(stays, *span.rows(part.c.id))
            )
            with pace.step():
                partitions.copy_into(engine, kept_table, rows)
        with pace.step():
            partitions.index_kept(engine, kept_table)
    kept = partitions.table_of(kept_table) if kept_table else None

    marked = 0

    def before(conn: sa.Connection) -> bool:
        nonlocal marked
        marked = 0  # a retried attempt starts over (the last one rolled back)
        # one statement deletes the labels that go and checks them: more than counted (a label arrived
        # since) rolls the replacement back. The labels of the day's id range, each looked up by key
        ids = part.alias("ids")
        lo = sa.select(sa.func.min(ids.c.id)).scalar_subquery()
        hi = sa.select(sa.func.max(ids.c.id)).scalar_subquery()
        gone: sa.ColumnElement[bool] = sa.exists().where(part.c.id == F.c.prediction_id)
        if kept is not None:
            gone = sa.and_(gone, ~sa.exists().where(kept.c.id == F.c.prediction_id))
        labels = sa.delete(F).where(F.c.prediction_id.between(lo, hi), gone)
        conn.execute(sa.text("SET LOCAL enable_hashjoin = off"))  # a probe per label, not a hash of the day
        deleted = int(conn.execute(labels).rowcount or 0)
        conn.execute(sa.text("SET LOCAL enable_hashjoin = on"))
        if deleted != sum(r.labeled for r in removed):
            log.info("retention: labels arrived for %s since it was counted; the next run retries", day)
            return False
        now = utcnow()
        for r in removed:
            days = {r.first_created.astimezone(UTC).date(), r.last_created.astimezone(UTC).date()}
            marked += purges.record(conn, r, days, now)
            purges.count(conn, r, now)
        return True

    with pace.step():
        done = partitions.replace_day(engine, day, kept_table, before)
    if done:
        out.runs_marked += marked
    return done
