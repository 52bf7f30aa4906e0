"""PostgreSQL's `predictions` is partitioned by UTC day (declarative RANGE on created_at): day partitions
`predictions_pYYYYMMDD`, created `AHEAD_DAYS` ahead by the retention job, and `predictions_default` for any
row no day partition covers (a scheduler down for a week, a row written with an old time by hand).

Locks, because every statement here shares the table with the prediction writer:
- a new day is `CREATE TABLE ... (LIKE predictions)` then `ATTACH PARTITION`, which takes SHARE UPDATE
  EXCLUSIVE on the parent (inserts go on); a CHECK constraint on the range spares the validation scan.
- removing a day (`replace_day`) needs ACCESS EXCLUSIVE on the parent for DETACH / DROP: catalog work of
  a few milliseconds, but a request queued behind a long reader would stall every insert behind it, so it
  runs under `LOCK_TIMEOUT_MS` and is retried, then left to the next run.
- the rows a removed day must keep (labeled rows within their period, rows runs and jobs need) are copied
  into a new table *before* the lock; under it that table replaces the day (DETACH old, ATTACH new, DROP
  old), so readers find kept rows where they always were: one table, no second place to read.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

log = logging.getLogger("driftloop.partitions")

PARENT = "predictions"
DEFAULT = "predictions_default"
AHEAD_DAYS = 7
LOCK_TIMEOUT_MS = 100
LOCK_ATTEMPTS = 5
REPLACED = "driftloop: the rows that stayed"
_DAY = re.compile(r"^predictions_p(\d{8})$")
# the parent's indexes, created on a replacement table before it is attached (so ATTACH only matches them)
INDEXES = (
    ("pkey", "PRIMARY KEY", "(id, created_at)"),
    ("model_time", "INDEX", "(model_name, model_version, created_at)"),
    ("model_seq", "INDEX", "(model_name, model_version, seq)"),
    ("seq", "INDEX", "(seq)"),
)


_PARTITION = re.compile(r"^predictions_(default|p\d{8}(_k\d+)?)$")


def one_process(conn: sa.Connection, *, by_index: bool = False) -> None:
    """No parallel workers for this transaction's statements (PostgreSQL): retention is background work
    and must not take every core from serving for a faster scan. `by_index`: a range of a partition's
    ids is read through its key (the planner would scan the whole day for a third of it)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
        if by_index:
            conn.execute(sa.text("SET LOCAL enable_seqscan = off"))


def is_partition(table_name: str) -> bool:
    """Whether a table is one of the parent's partitions (schema comparisons leave them out: they are
    made at run time, not declared)."""
    return bool(_PARTITION.match(table_name))


def name_of(day: date) -> str:
    return f"predictions_p{day:%Y%m%d}"


def bounds_of(day: date) -> tuple[datetime, datetime]:
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return lo, lo + timedelta(days=1)


def _literal(t: datetime) -> str:
    return f"'{t.isoformat()}'"


def range_sql(day: date) -> str:
    lo, hi = bounds_of(day)
    return f"FROM ({_literal(lo)}) TO ({_literal(hi)})"


def is_partitioned(conn: sa.Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(
        sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": PARENT}
    ).scalar()
    return kind == "p"


def day_partitions(conn: sa.Connection) -> dict[date, str]:
    """The attached day partitions, by day."""
    names = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": PARENT},
    ).scalars()
    out: dict[date, str] = {}
    for name in names:
        if m := _DAY.match(name):
            out[datetime.strptime(m.group(1), "%Y%m%d").date()] = name
    return out


def replaced_days(conn: sa.Connection) -> set[date]:
    """Days already replaced by the rows that stayed (marked by a table comment)."""
    names = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t) AND obj_description(c.oid, 'pg_class') = :r"
        ),
        {"t": PARENT, "r": REPLACED},
    ).scalars()
    return {datetime.strptime(m.group(1), "%Y%m%d").date() for n in names if (m := _DAY.match(n))}


def _new_table(conn: sa.Connection, name: str, day: date) -> None:
    lo, hi = bounds_of(day)
    conn.execute(sa.text(f'CREATE TABLE "{name}" (LIKE {PARENT} INCLUDING DEFAULTS)'))
    conn.execute(
        sa.text(
            f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_range" '
            f"CHECK (created_at >= {_literal(lo)} AND created_at < {_literal(hi)})"
        )
    )


def _indexes(conn: sa.Connection, name: str) -> None:
    for suffix, kind, columns in INDEXES:
        if kind == "PRIMARY KEY":
            conn.execute(sa.text(f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_{suffix}" {kind} {columns}'))
        else:
            conn.execute(sa.text(f'CREATE INDEX "{name}_{suffix}" ON "{name}" {columns}'))


def attach(conn: sa.Connection, name: str, day: date) -> None:
    conn.execute(sa.text(f'ALTER TABLE {PARENT} ATTACH PARTITION "{name}" FOR VALUES {range_sql(day)}'))


def create_day(conn: sa.Connection, day: date) -> None:
    """Attach a partition for `day` in the caller's transaction, moving the default partition's rows of
    that day into it (ATTACH refuses a range the default partition still holds rows of)."""
    name = name_of(day)
    lo, hi = bounds_of(day)
    _new_table(conn, name, day)
    moved = conn.execute(
        sa.text(
            f"WITH gone AS (DELETE FROM {DEFAULT} WHERE created_at >= :lo AND created_at < :hi RETURNING *) "
            f'INSERT INTO "{name}" SELECT * FROM gone'
        ),
        {"lo": lo, "hi": hi},
    ).rowcount
    _indexes(conn, name)
    attach(conn, name, day)
    if moved:
        log.info("partition %s created with %d rows moved from %s", name, moved, DEFAULT)


def ensure_partitions(engine: sa.Engine, now: datetime, ahead_days: int = AHEAD_DAYS) -> list[date]:
    """Create the missing day partitions from today to `ahead_days` ahead; the days created."""
    created: list[date] = []
    with engine.connect() as conn:
        if not is_partitioned(conn):
            return created
        have = set(day_partitions(conn))
    today = now.astimezone(UTC).date()
    for day in (today + timedelta(days=k) for k in range(ahead_days + 1)):
        if day in have:
            continue
        if _with_lock_retries(engine, lambda conn, d=day: create_day(conn, d)):  # type: ignore[misc]
            created.append(day)
    return created


def _with_lock_retries(engine: sa.Engine, body: Callable[[sa.Connection], None]) -> bool:
    """Run `body` in one transaction whose locks wait at most LOCK_TIMEOUT_MS; retried LOCK_ATTEMPTS
    times with a growing pause. False if every attempt timed out (nothing changed)."""
    for attempt in range(LOCK_ATTEMPTS):
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))
                one_process(conn)
                body(conn)
            return True
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            time.sleep(0.2 * (attempt + 1))
    log.warning("partition change gave up after %d lock timeouts; the next run retries", LOCK_ATTEMPTS)
    return False


def table_of(name: str) -> sa.TableClause:
    """A partition (or a table like one) with the parent's columns, for SQLAlchemy statements."""
    from service.db.tables import Prediction

    return sa.table(name, *[sa.column(c.name, c.type) for c in Prediction.__table__.columns])  # type: ignore[attr-defined]


def new_kept(engine: sa.Engine, day: date) -> str:
    """A new, unattached table for the day's rows to keep (filled by `copy_into`, then `index_kept`);
    no lock on the parent. Its name is unique: its index names must not meet an earlier replacement's."""
    name = f"{name_of(day)}_k{time.time_ns() // 1000}"
    with engine.begin() as conn:
        _new_table(conn, name, day)
    return name


def copy_into(engine: sa.Engine, name: str, rows: sa.Select[Any]) -> int:
    """Copy `rows` (a select of whole rows, in the parent's column order) into the table `name`, in one
    short transaction that only reads the parent; the rows copied."""
    target = table_of(name)
    with engine.begin() as conn:
        one_process(conn, by_index=True)
        done = conn.execute(sa.insert(target).from_select([c.name for c in target.columns], rows))
    return int(done.rowcount or 0)


def index_kept(engine: sa.Engine, name: str) -> None:
    """The parent's indexes on a filled replacement table (built once, after the rows are in)."""
    with engine.begin() as conn:
        one_process(conn)
        _indexes(conn, name)


def drop_leftovers(engine: sa.Engine) -> None:
    """Tables `new_kept` made for a replacement that never happened (a crash between the two)."""
    with engine.begin() as conn:
        names = (
            conn.execute(
                sa.text(
                    "SELECT relname FROM pg_class WHERE relkind = 'r' AND NOT relispartition "
                    "AND relname ~ '^predictions_p[0-9]{8}_k[0-9]+$'"
                )
            )
            .scalars()
            .all()
        )
        for name in names:
            conn.execute(sa.text(f'DROP TABLE "{name}"'))


def replace_day(
    engine: sa.Engine,
    day: date,
    kept_table: str | None,
    before: Callable[[sa.Connection], bool],
) -> bool:
    """Remove the day partition, putting `kept_table` (from `new_kept`) in its place if given. `before`
    runs first in the same transaction (bookkeeping, label deletes) and may return False to cancel.
    True if the day was replaced."""
    name = name_of(day)
    cancelled = False

    def body(conn: sa.Connection) -> None:
        nonlocal cancelled
        if not before(conn):
            cancelled = True
            raise _Cancel
        conn.execute(sa.text(f'ALTER TABLE {PARENT} DETACH PARTITION "{name}"'))
        conn.execute(sa.text(f'DROP TABLE "{name}"'))
        if kept_table is not None:
            conn.execute(sa.text(f'ALTER TABLE "{kept_table}" RENAME TO "{name}"'))
            conn.execute(sa.text(f"COMMENT ON TABLE \"{name}\" IS '{REPLACED}'"))
            attach(conn, name, day)

    try:
        done = _with_lock_retries(engine, body)
    except _Cancel:
        done = False
    if not done and kept_table is not None:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{kept_table}"'))
    return done and not cancelled


class _Cancel(Exception):
    """`before` declined: roll the transaction back."""
