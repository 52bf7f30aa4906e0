"""The prediction log and its labels. Store functions take a connection or session and never commit:
the log writer (group commit) and the feedback route own their transactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from service.codec import dumps
from service.db.leases import advisory_key
from service.db.tables import Feedback, Prediction, utcnow

_PREDICTIONS = Prediction.__table__  # type: ignore[attr-defined]
_FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]


# PostgreSQL: one transaction-level advisory lock orders every prediction insert (see insert_predictions)
SEQUENCE_LOCK = advisory_key("predictions.seq")
_SEQ = _PREDICTIONS.c.seq


def insert_predictions(conn: sa.Connection, *, rows: Sequence[dict[str, Any]]) -> None:
    """Insert prediction rows (Core: the hot path skips the ORM's unit of work), numbering them in `seq`
    so that every reader sees a prefix of the sequence: rows are never committed below a visible one.

    PostgreSQL numbers rows at insert, not at commit, so two overlapping transactions could commit out of
    order; the transaction takes `SEQUENCE_LOCK` first and keeps it until its commit (released after the
    commit is visible), which makes commit order the sequence order. SQLite has one writer at a time: the
    next number is read in the INSERT itself, under the write lock. Every prediction insert goes through
    here (an insert elsewhere would break the order).
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEQUENCE_LOCK})
        conn.execute(sa.insert(_PREDICTIONS), list(rows))
        return
    following = sa.select(sa.func.coalesce(sa.func.max(_SEQ), 0) + 1).scalar_subquery()
    conn.execute(sa.insert(_PREDICTIONS).values(seq=following), list(rows))


@dataclass(frozen=True)
class FeedbackOutcome:
    prediction_id: str
    status: str  # stored | unchanged | updated | unknown_prediction


def record_feedback(session: Session, *, items: Sequence[tuple[str, Any]]) -> list[FeedbackOutcome]:
    """Store labels; idempotent per prediction id, a changed label is an update, unknown ids are reported."""
    ids = list({pid for pid, _ in items})
    known: set[str] = set()
    existing: dict[str, str] = {}
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start : chunk_start + 500]
        known.update(session.exec(select(Prediction.id).where(Prediction.id.in_(chunk))).all())  # type: ignore[attr-defined]
        for row in session.exec(select(Feedback).where(Feedback.prediction_id.in_(chunk))).all():  # type: ignore[attr-defined]
            existing[row.prediction_id] = row.label
    now = utcnow()
    outcomes: list[FeedbackOutcome] = []
    for pid, label in items:
        encoded = dumps(label)
        if pid not in known:
            outcomes.append(FeedbackOutcome(pid, "unknown_prediction"))
        elif pid not in existing:
            session.add(Feedback(prediction_id=pid, label=encoded, received_at=now))
            existing[pid] = encoded
            outcomes.append(FeedbackOutcome(pid, "stored"))
        elif existing[pid] == encoded:
            outcomes.append(FeedbackOutcome(pid, "unchanged"))
        else:
            stored = session.get(Feedback, pid)
            assert stored is not None
            stored.label, stored.received_at = encoded, now
            session.add(stored)
            existing[pid] = encoded
            outcomes.append(FeedbackOutcome(pid, "updated"))
    session.flush()
    return outcomes
