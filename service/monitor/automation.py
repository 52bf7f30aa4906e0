"""Whether the automatic loop may retrain and promote for a model: `active`, or `paused` by a person.

The state is per model (one row each). A manual rollback pauses it (`rollback.py`): the version a person
chose keeps serving, and the loop does not promote over it at the next breach, until a person resumes it
(`POST /v1/models/{name}/automation`, or `/v1/automation` for the default model) or, when
`DRIFTLOOP_AUTOMATION_HOLD_SECONDS` is set, that long after the rollback. A model without a row is active.
A person's pause or resume (`change`) records `automation.paused` / `automation.resumed` naming the model
(a rollback's pause is told by its `model.rolled_back`). Store functions take a session and only add /
flush; the caller commits.

`automation_paused` (DRIFTLOOP_AUTOMATION_PAUSED, or the model's table in DRIFTLOOP_MODELS_FILE) is a
configured pause: it wins over the stored state, names where it is set, and only the configuration lifts it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote

from sqlmodel import Session

from service.alerts.outbox import emit
from service.config import Settings
from service.db.tables import AutomationState, utcnow

State = Literal["active", "paused"]
ROLLBACK = "rollback"
CONFIGURED = "configuration"  # changed_by of a configured pause
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")  # a TOML key that needs no quotes


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
    """The model's state now (a rollback's pause past its hold time reads as active); a configured pause
    (`automation_paused`) wins over the stored state."""
    if settings.automation_paused:
        reason = f"paused by {configured_in(settings)}"
        return Automation(model_name, "paused", reason, CONFIGURED, None, None)
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


def configured_in(settings: Settings) -> str:
    """Where the model's configured pause is set: its table in the models file, else the environment."""
    if "automation_paused" in settings.from_models_file:
        return f"automation_paused = true in {_table(settings.model_name)} of {settings.models_file}"
    return "DRIFTLOOP_AUTOMATION_PAUSED=true"


def how_to_lift(settings: Settings) -> str:
    """What a person changes to lift the configured pause (the settings are read when a process starts)."""
    table = _table(settings.model_name)
    if "automation_paused" in settings.from_models_file:
        change = f"set automation_paused = false in {table} of {settings.models_file}"
    else:
        change = (
            "set DRIFTLOOP_AUTOMATION_PAUSED=false (or only for this model automation_paused = false in "
            f"{table} of DRIFTLOOP_MODELS_FILE)"
        )
    return f"{change} and restart the driftloop processes"


def _table(model_name: str) -> str:
    """The model's table header in the models file (a JSON string is a TOML basic string)."""
    key = model_name if _BARE_KEY.match(model_name) else json.dumps(model_name, ensure_ascii=False)
    return f"[models.{key}]"


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


def change(
    session: Session, model_name: str, state: State, *, reason: str, by: str, settings: Settings
) -> Automation:
    """A person pauses or resumes the model's loop: record it and, when the state changes, its event in
    the outbox (flushed, not committed). Returns the state now."""
    before = current(session, model_name, settings)
    set_state(session, model_name, state, reason=reason, by=by)
    after = current(session, model_name, settings)
    if before.state != after.state:
        verb = "paused" if after.paused else "resumed"
        emit(
            session, type=f"automation.{verb}", model_name=model_name, model_version=None,
            summary=f"automatic retraining and promotion of {model_name} {verb} by {by}: {reason}",
            data={"state": after.state, "previous_state": before.state, "reason": after.reason, "by": by},
            links={"automation": f"{settings.public_url}/v1/models/{quote(model_name, safe='')}/automation",
                   "dashboard": f"{settings.public_url}/"},
        )  # fmt: skip
    return after


def blocked(session: Session, model_name: str, settings: Settings) -> str | None:
    """Why the automatic loop may not retrain now because of a pause, or None."""
    found = current(session, model_name, settings)
    if not found.paused:
        return None
    if found.changed_by == CONFIGURED:
        return f"automation {found.reason}"
    until = f" until resumed (POST /v1/models/{model_name}/automation)"
    if found.resumes_at is not None:
        until = f" until {found.resumes_at.isoformat()}"
    return f"automation paused by {found.changed_by or 'a person'}{until}: {found.reason}"
