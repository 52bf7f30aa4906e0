"""The prediction log and its labels. Store functions take a connection or session and never commit:
the log writer (group commit) and the feedback route own their transactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from service.codec import dumps
from service.db.tables import Feedback, Prediction, utcnow

_PREDICTIONS = Prediction.__table__  # type: ignore[attr-defined]
_FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]


def insert_predictions(conn: sa.Connection, *, rows: Sequence[dict[str, Any]]) -> None:
    """Insert prediction rows (Core: the hot path skips the ORM's unit of work)."""
    if rows:
        conn.execute(sa.insert(_PREDICTIONS), list(rows))


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
