"""Whether the automatic loop may retrain and promote for a model: `active`, or `paused` by a person.

A manual rollback pauses it (`rollback.py`): the version a person chose keeps serving, and the loop does not
promote over it at the next breach, until a person resumes it (`POST /v1/automation`) or, when
`DRIFTLOOP_AUTOMATION_HOLD_SECONDS` is set, that long after the rollback. A model without a row is active.
Store functions take a session and only add / flush; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlmodel import Session

from service.config import Settings
from service.db.tables import AutomationState, utcnow

State = Literal["active", "paused"]
ROLLBACK = "rollback"


@dataclass(frozen=True)
class Automation:
    model_name: str
    state: State
    reason: str
    changed_by: str
    changed_at: datetime | None
    resumes_at: datetime | None  # a rollback's hold ends here (None: until a person resumes)

    @property
    def paused(self) -> bool:
        return self.state == "paused"


def current(session: Session, model_name: str, settings: Settings, now: datetime | None = None) -> Automation:
    """The model's state now (a rollback's pause past its hold time reads as active)."""
    row = session.get(AutomationState, model_name)
    if row is None:
        return Automation(model_name, "active", "", "", None, None)
    resumes = None
    if row.state == "paused" and row.changed_by == ROLLBACK and settings.automation_hold_seconds > 0:
        resumes = row.changed_at + timedelta(seconds=settings.automation_hold_seconds)
        if (now or utcnow()) >= resumes:
            return Automation(model_name, "active", f"hold after the rollback ended ({row.reason})",
                              row.changed_by, resumes, None)  # fmt: skip
    state: State = "paused" if row.state == "paused" else "active"
    return Automation(model_name, state, row.reason, row.changed_by, row.changed_at, resumes)


def set_state(session: Session, model_name: str, state: State, *, reason: str, by: str) -> AutomationState:
    """Record `state` for the model (insert or update; flushed, not committed)."""
    if state not in ("active", "paused"):
        raise ValueError(f"state must be active or paused, got {state!r}")
    row = session.get(AutomationState, model_name)
    if row is None:
        row = AutomationState(model_name=model_name, state=state, reason=reason[:500], changed_by=by[:200],
                              changed_at=utcnow())  # fmt: skip
    else:
        row.state, row.reason, row.changed_by, row.changed_at = state, reason[:500], by[:200], utcnow()
    session.add(row)
    session.flush()
    return row


def blocked(session: Session, model_name: str, settings: Settings) -> str | None:
    """Why the automatic loop may not retrain now because of a pause, or None."""
    found = current(session, model_name, settings)
    if not found.paused:
        return None
    until = " until resumed (POST /v1/automation)"
    if found.resumes_at is not None:
        until = f" until {found.resumes_at.isoformat()}"
    return f"automation paused by {found.changed_by or 'a person'}{until}: {found.reason}"
