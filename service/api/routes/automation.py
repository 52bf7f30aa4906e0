"""The automatic loop's state per model (admin): paused after a manual rollback, resumed by a person."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import AdminDep, RuntimeDep, SessionDep
from service.api.routes._responses import errors
from service.monitor import automation

router = APIRouter(prefix="/v1", tags=["retraining"], responses=errors(400, 401, 403, 422))


class AutomationPublic(BaseModel):
    model_name: str
    state: Literal["active", "paused"]
    reason: str
    changed_by: str
    changed_at: datetime | None
    resumes_at: datetime | None = Field(description="When a rollback's hold ends (none: until resumed).")

    @classmethod
    def of(cls, found: automation.Automation) -> AutomationPublic:
        return cls(
            model_name=found.model_name, state=found.state, reason=found.reason, changed_by=found.changed_by,
            changed_at=found.changed_at, resumes_at=found.resumes_at,
        )  # fmt: skip


class AutomationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["active", "paused"] = Field(description="`active` resumes the loop, `paused` holds it.")
    reason: str = Field(default="", max_length=500, description="Why, for the record.")


@router.get("/automation", response_model=AutomationPublic, dependencies=[AdminDep])
def get_automation(session: SessionDep, runtime: RuntimeDep) -> AutomationPublic:
    """Whether the automatic loop may retrain and promote for the served model."""
    s = runtime.settings
    return AutomationPublic.of(automation.current(session, s.model_name, s))


@router.post("/automation", response_model=AutomationPublic, dependencies=[AdminDep])
def set_automation(body: AutomationRequest, session: SessionDep, runtime: RuntimeDep) -> AutomationPublic:
    """Pause or resume the automatic loop of the served model (a rollback pauses it)."""
    s = runtime.settings
    reason = body.reason or f"set {body.state} by an admin"
    automation.set_state(session, s.model_name, body.state, reason=reason, by="admin")
    session.commit()
    return AutomationPublic.of(automation.current(session, s.model_name, s))
