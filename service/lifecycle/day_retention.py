"""Retention by whole day partitions (PostgreSQL): a day whose rows mostly go is removed at once.

For each day partition that may hold deletable rows (oldest first), one read counts its rows and those
the versions' bounds let go (`keep.deletable`; a version without bounds keeps every row):
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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date

import sqlalchemy as sa

from service.db.tables import Feedback, utcnow
from service.lifecycle import partitions, purges
from service.lifecycle.keep import Bounds, deletable

log = logging.getLogger("driftloop.retention")
F = Feedback.__table__  # type: ignore[attr-defined]


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


def count_day(
    conn: sa.Connection, part: sa.TableClause, plan: Mapping[tuple[str, str], Bounds]
) -> tuple[int, list[purges.Removed]]:
    """The partition's row count and, per version, the rows that go."""
    total = int(conn.execute(sa.select(sa.func.count()).select_from(part)).scalar_one())
    c = part.c
    stmt = (
        sa.select(
            c.model_name, c.model_version, sa.func.count(), sa.func.count(F.c.prediction_id),
            sa.func.min(c.created_at), sa.func.max(c.created_at),
            sa.func.min(F.c.received_at), sa.func.max(F.c.received_at),
        )
        .select_from(part.outerjoin(F, F.c.prediction_id == c.id))
        .where(_goes(part, plan))
        .group_by(c.model_name, c.model_version)
    )  # fmt: skip
    return total, [purges.Removed(*row) for row in conn.execute(stmt)]


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
    out_of_time: Callable[[], bool],
) -> DayOutcome:
    out = DayOutcome(left=[partitions.DEFAULT])
    if not plan:
        return out
    for day, name in candidates(engine, plan):
        if out_of_time():
            out.deferred.append(day)
            continue
        part = partitions.table_of(name)
        with engine.connect() as conn:
            total, removed = count_day(conn, part, plan)
        going = sum(r.rows for r in removed)
        if going == 0:
            continue
        if going < total - going:
            out.left.append(name)
            continue
        if _replace(engine, day, part, plan, removed, total - going, out):
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
) -> bool:
    kept_table = None
    if staying:
        stays = sa.not_(sa.func.coalesce(_goes(part, plan), sa.false()))
        rows = sa.select(*part.c).select_from(part.outerjoin(F, F.c.prediction_id == part.c.id)).where(stays)
        kept_table = partitions.copy_kept(engine, day, rows)
    kept = partitions.table_of(kept_table) if kept_table else None

    marked = 0

    def before(conn: sa.Connection) -> bool:
        nonlocal marked
        marked = 0  # a retried attempt starts over (the last one rolled back)
        gone = sa.select(part.c.id)
        if kept is not None:
            gone = gone.where(part.c.id.not_in(sa.select(kept.c.id)))
        labels = sa.select(sa.func.count()).where(F.c.prediction_id.in_(gone))
        if conn.execute(labels).scalar_one() != sum(r.labeled for r in removed):
            log.info("retention: labels arrived for %s since it was counted; the next run retries", day)
            return False
        conn.execute(sa.delete(F).where(F.c.prediction_id.in_(gone)))
        now = utcnow()
        for r in removed:
            days = {r.first_created.astimezone(UTC).date(), r.last_created.astimezone(UTC).date()}
            marked += purges.record(conn, r, days, now)
            purges.count(conn, r, now)
        return True

    done = partitions.replace_day(engine, day, kept_table, before)
    if done:
        out.runs_marked += marked
    return done
