"""The settled watermark: the part of the commit order (and of time) that no transaction can still change.

Writers (service/serving/store.py) take sequence values without a lock, so on PostgreSQL rows become
visible out of `seq` order: a transaction holding a low `seq` may commit after a higher one. Every writer
transaction gets its xid *before* it takes a sequence value and stamps its rows' time *after* that, from the
database clock. A reader then
1. reads, in one snapshot S, M = the highest visible `seq` and T = the database clock;
2. takes an xid R of its own (after S and T) and ends its transaction;
3. waits until no transaction of this database with an xid <= R is running (pg_stat_activity's
   `backend_xid`, read after R ended, and prepared transactions).
A transaction T' that holds a `seq` s < M took s before M was taken (one sequence, no cache: values are
handed out in time order), so its xid was assigned before M's transaction committed, before S, before R.
A transaction stamping a time c < T took its xid before c, so before R. After step 3 both have ended:
the rows with `seq` <= M, and the rows stamped before T, are final (gaps left by rollbacks stay gaps).
`pg_snapshot_xmax` alone would not do: it is one past the latest *completed* xid, and a running
transaction with a higher xid than that can hold a lower `seq`.
This needs the sequences to keep CACHE 1 (`predictions_seq_seq`, `feedback_seq_seq`) and every writer to
go through `service.serving.store` (`begin_write`); the times compare on one clock, the database's.

SQLite numbers rows inside the INSERT under its single write lock, so every snapshot is a prefix: M is
the highest visible `seq`. Writers stamp their time after taking the write lock, so taking that lock once
after reading T waits out every transaction that stamped a time before T.

The wait is bounded: a transaction of this database left open holds the watermark back; the candidate
stays pending and is tried again at the next tick.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from service.db.tables import Feedback, Prediction

log = logging.getLogger("driftloop.monitor")

P = Prediction.__table__  # type: ignore[attr-defined]
F = Feedback.__table__  # type: ignore[attr-defined]
WAIT_SECONDS = 2.0  # a writer's transaction lasts milliseconds (one group commit)
_POLL_SECONDS = 0.005
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Settled:
    seq: int  # every row of the table with seq <= this is final
    until: datetime  # every row the store stamped before this is final


def _max_seq(kind: str, model_name: str, model_version: str) -> sa.ScalarSelect[int]:
    if kind == "drift":  # the version's own rows (the model/version/seq index)
        where = sa.and_(P.c.model_name == model_name, P.c.model_version == model_version)
        return sa.select(sa.func.coalesce(sa.func.max(P.c.seq), 0)).where(where).scalar_subquery()
    # labels: the highest of the table (its seq index); final for every model's rows at once
    return sa.select(sa.func.coalesce(sa.func.max(F.c.seq), 0)).scalar_subquery()


# a transaction of this database with an xid <= R (xids compare by age: the older, the larger)
_R = "age(CAST(CAST(CAST(:r AS text) AS xid8) AS xid))"
_OPEN_BELOW = sa.text(
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
    f"AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL AND age(backend_xid) >= {_R}) "
    "OR EXISTS (SELECT 1 FROM pg_prepared_xacts WHERE database = current_database() "
    f"AND age(transaction) >= {_R})"
)


def _ended_up_to(conn: sa.Connection, r: int) -> bool:
    """Whether every transaction of this database with an xid <= `r` has ended. Only this database's
    transactions can hold its rows, so one left open in another database on the server does not count
    (the snapshot's xmin would: xids are cluster-wide). A fresh transaction per call: pg_stat_activity
    is read once per transaction."""
    open_below = bool(conn.execute(_OPEN_BELOW, {"r": r}).scalar_one())
    conn.rollback()
    return not open_below


def _pg_candidate(conn: sa.Connection, kind: str, name: str, version: str) -> tuple[int, int, datetime]:
    conn.rollback()  # a fresh snapshot, no xid of ours before R
    m, t = conn.execute(sa.select(_max_seq(kind, name, version), sa.func.clock_timestamp())).one()
    r = conn.execute(sa.text("SELECT pg_current_xact_id()::text::bigint")).scalar_one()
    conn.commit()  # R ends: it is only a marker in the xid order
    return int(m), int(r), t


def _sqlite_settled(conn: sa.Connection, kind: str, name: str, version: str, *, times: bool) -> Settled:
    conn.rollback()
    m = int(conn.execute(sa.select(_max_seq(kind, name, version))).scalar_one())
    until = datetime.now(UTC)
    if times:  # the write lock once: every writer that stamped a time before `until` has ended
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        if not dbapi.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        conn.rollback()
    return Settled(m, until)


def settled(
    conn: sa.Connection,
    *,
    kind: str,
    model_name: str,
    model_version: str,
    state: dict[str, int],
    times: bool = True,
    wait: float | None = None,
) -> Settled:
    """The watermark of `kind`'s table (drift: the version's predictions; performance: feedback).

    `state` carries the last settled watermark and a pending candidate between calls (the monitor's
    frontiers). `times`: whether a time watermark is needed (SQLite takes its write lock for it). Ends
    the connection's transaction; later reads see a snapshot taken after the watermark settled.
    """
    if conn.dialect.name != "postgresql":
        return _sqlite_settled(conn, kind, model_name, model_version, times=times)
    key = f"settled:{kind}:{model_name}:{model_version}"
    wait = WAIT_SECONDS if wait is None else wait
    deadline = time.monotonic() + wait
    fresh = False
    while True:
        if key + ":r" not in state:
            m, r, t = _pg_candidate(conn, kind, model_name, model_version)
            state[key + ":m"], state[key + ":r"], state[key + ":t"] = m, r, _micros(t)
            fresh = True
        if _ended_up_to(conn, state[key + ":r"]):
            state[key + ":seq"], state[key + ":until"] = state.pop(key + ":m"), state.pop(key + ":t")
            del state[key + ":r"]
            if fresh:
                break
            continue  # an older candidate settled: take a fresh one
        if time.monotonic() >= deadline:
            log.warning(
                "%s %s v%s: a transaction open for more than %.1f s holds the settled watermark back",
                kind, model_name, model_version, wait,
            )  # fmt: skip
            break
        time.sleep(_POLL_SECONDS)
    if key + ":seq" not in state:
        return Settled(0, _EPOCH)
    return Settled(state[key + ":seq"], _from_micros(state[key + ":until"]))


def _micros(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1)


def _from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)
