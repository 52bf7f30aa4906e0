"""The prediction log and its labels. Store functions take a connection or session and never commit:
the log writer (group commit) and the feedback route own their transactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from service.codec import dumps
from service.db.commit_order import next_feedback_seq
from service.db.tables import Feedback, Prediction, utcnow

_PREDICTIONS = Prediction.__table__  # type: ignore[attr-defined]
_FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]


_SEQ = _PREDICTIONS.c.seq
# xid first, then the database clock (the OFFSET 0 subquery is evaluated before the outer select list)
_PG_BEGIN = sa.text("SELECT x, clock_timestamp() FROM (SELECT pg_current_xact_id() AS x OFFSET 0) AS s")


def begin_write(conn: sa.Connection) -> datetime:
    """Enter the commit order before taking a `seq`; returns the time to stamp the rows with.

    The settled watermark (service/monitor/settled.py) relies on two things done here. PostgreSQL: the
    transaction gets its xid before any sequence value (then a reader that waits for every xid up to
    one of its own, taken after it saw `seq` M, has waited for every transaction holding a `seq` below
    M), and its time stamp is read from the database clock after that (so rows stamped before a
    reader's clock reading belong to transactions that had their xid by then). SQLite: the write lock is
    taken first (BEGIN IMMEDIATE), so the stamp is read under it and numbering happens under it.
    """
    if conn.dialect.name == "postgresql":
        stamped: datetime = conn.execute(_PG_BEGIN).one()[1]
        return stamped
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    if not dbapi.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    return utcnow()


def insert_predictions(conn: sa.Connection, *, rows: Sequence[dict[str, Any]]) -> None:
    """Insert prediction rows (Core: the hot path skips the ORM's unit of work), numbered in `seq` and,
    when they carry no `created_at`, stamped with the time of their transaction (`begin_write`).

    PostgreSQL: `seq` comes from a plain sequence, taken without a lock; overlapping transactions
    may commit out of `seq` order, and readers cut windows only below the settled watermark
    (service/monitor/settled.py). The sequence must keep CACHE 1 (values in time order across
    sessions). SQLite has one writer at a time: the next number is read in the INSERT itself, under the
    write lock, so every snapshot is a prefix. Rows given a `created_at` (imports, tests) keep it and are
    outside the time-window guarantee. Every prediction insert goes through here.
    """
    if not rows:
        return
    stamp = begin_write(conn)
    rows = [r if r.get("created_at") is not None else {**r, "created_at": stamp} for r in rows]
    if conn.dialect.name == "postgresql":
        conn.execute(sa.insert(_PREDICTIONS), rows)
        return
    following = sa.select(sa.func.coalesce(sa.func.max(_SEQ), 0) + 1).scalar_subquery()
    conn.execute(sa.insert(_PREDICTIONS).values(seq=following), rows)


@dataclass(frozen=True)
class FeedbackOutcome:
    prediction_id: str
    status: str  # stored | unchanged | updated | unknown_prediction


def record_feedback(session: Session, *, items: Sequence[tuple[str, Any]]) -> list[FeedbackOutcome]:
    """Store labels; idempotent per prediction id, a changed label is an update, unknown ids are reported.

    Each stored or changed label takes the next feedback `seq` (the commit order performance windows
    are cut by, like `insert_predictions`): a corrected label is a new arrival and counts in the window
    being filled, never in one already checked.
    """
    conn = session.connection()
    now = begin_write(conn)
    ids = list({pid for pid, _ in items})
    known: set[str] = set()
    existing: dict[str, str] = {}
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start : chunk_start + 500]
        known.update(session.exec(select(Prediction.id).where(Prediction.id.in_(chunk))).all())  # type: ignore[attr-defined]
        labels = sa.select(_FEEDBACK.c.prediction_id, _FEEDBACK.c.label)
        for pid, label in conn.execute(labels.where(_FEEDBACK.c.prediction_id.in_(chunk))):
            existing[pid] = label
    outcomes: list[FeedbackOutcome] = []
    inserts: dict[str, str] = {}
    updates: dict[str, str] = {}
    for pid, label in items:
        encoded = dumps(label)
        if pid not in known:
            outcomes.append(FeedbackOutcome(pid, "unknown_prediction"))
        elif pid not in existing:
            inserts[pid] = existing[pid] = encoded
            outcomes.append(FeedbackOutcome(pid, "stored"))
        elif existing[pid] == encoded:
            outcomes.append(FeedbackOutcome(pid, "unchanged"))
        else:
            (inserts if pid in inserts else updates)[pid] = existing[pid] = encoded
            outcomes.append(FeedbackOutcome(pid, "updated"))
    if inserts:  # `seq` is the column's default (service/db/commit_order.py)
        rows = [{"prediction_id": p, "label": v, "received_at": now} for p, v in inserts.items()]
        conn.execute(sa.insert(_FEEDBACK), rows)
    if updates:
        stmt = (
            sa.update(_FEEDBACK)
            .where(_FEEDBACK.c.prediction_id == sa.bindparam("pid"))
            .values(label=sa.bindparam("new_label"), received_at=now, seq=next_feedback_seq())
        )
        conn.execute(stmt, [{"pid": p, "new_label": v} for p, v in updates.items()])
    return outcomes
