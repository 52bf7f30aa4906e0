"""Every database write lives here (keyword-only functions); routes and jobs call these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session, select

from service.models import Feedback, Prediction, ReferenceProfileRow, utcnow

_PREDICTIONS = Prediction.__table__  # type: ignore[attr-defined]
_FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def insert_predictions(engine: sa.Engine, *, rows: Sequence[dict[str, Any]]) -> None:
    """Insert prediction rows in one transaction (the group commit)."""
    if not rows:
        return
    with engine.begin() as conn:
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
    session.commit()
    return outcomes


def get_reference(session: Session, *, model_name: str, model_version: str) -> ReferenceProfileRow | None:
    return session.exec(
        select(ReferenceProfileRow).where(
            ReferenceProfileRow.model_name == model_name, ReferenceProfileRow.model_version == model_version
        )
    ).first()


def save_reference(
    session: Session,
    *,
    model_name: str,
    model_version: str,
    source: str,
    n_rows: int,
    profile_json: str,
    sample_json: str,
) -> ReferenceProfileRow:
    """Insert or replace the reference profile of one model version."""
    row = get_reference(session, model_name=model_name, model_version=model_version)
    if row is None:
        row = ReferenceProfileRow(
            model_name=model_name, model_version=model_version, source=source, n_rows=n_rows,
            profile=profile_json, sample=sample_json, created_at=utcnow(),
        )  # fmt: skip
    else:
        row.source, row.n_rows, row.profile, row.sample = source, n_rows, profile_json, sample_json
        row.created_at = utcnow()
    session.add(row)
    try:
        session.commit()
    except sa.exc.IntegrityError:  # two checks fitted the same missing profile at once: the first insert wins
        session.rollback()
        existing = get_reference(session, model_name=model_name, model_version=model_version)
        assert existing is not None
        return existing
    session.refresh(row)
    return row
