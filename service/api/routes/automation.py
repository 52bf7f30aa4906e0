"""The automatic loop's state per model (admin): paused after a manual rollback, resumed by a person;
a configured pause (`automation_paused`) reads paused here and only its configuration lifts it (409)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException
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


def _get(session: SessionDep, runtime: RuntimeDep, name: str) -> AutomationPublic:
    s = runtime.settings_for(name)  # an unknown model is a 404 naming the known ones
    return AutomationPublic.of(automation.current(session, name, s))


def _set(body: AutomationRequest, session: SessionDep, runtime: RuntimeDep, name: str) -> AutomationPublic:
    s = runtime.settings_for(name)
    if s.automation_paused and body.state == "active":  # the configuration's to change, as watch.py
        raise HTTPException(
            409,
            f"{name}: automatic retraining is paused by {automation.configured_in(s)}, which a resume here "
            f"cannot lift: {automation.how_to_lift(s)}",
        )
    reason = body.reason or f"set {body.state} by an admin"
    found = automation.change(session, name, body.state, reason=reason, by="admin", settings=s)
    session.commit()
    return AutomationPublic.of(found)


@router.get("/automation", response_model=AutomationPublic, dependencies=[AdminDep])
def get_automation(session: SessionDep, runtime: RuntimeDep) -> AutomationPublic:
    """Whether the automatic loop may retrain and promote for the default model."""
    return _get(session, runtime, runtime.settings.model_name)


@router.post("/automation", response_model=AutomationPublic, dependencies=[AdminDep], responses=errors(409))
def set_automation(body: AutomationRequest, session: SessionDep, runtime: RuntimeDep) -> AutomationPublic:
    """Pause or resume the automatic loop of the default model (a rollback pauses it); a change is an
    `automation.paused` / `automation.resumed` event. Resuming a configured pause (`automation_paused`) is
    a 409 saying what to change."""
    return _set(body, session, runtime, runtime.settings.model_name)


@router.get(
    "/models/{name}/automation", response_model=AutomationPublic, dependencies=[AdminDep],
    responses=errors(404),
)  # fmt: skip
def get_model_automation(name: str, session: SessionDep, runtime: RuntimeDep) -> AutomationPublic:
    """Whether the automatic loop may retrain and promote for the named model."""
    return _get(session, runtime, name)


@router.post(
    "/models/{name}/automation", response_model=AutomationPublic, dependencies=[AdminDep],
    responses=errors(404, 409),
)  # fmt: skip
def set_model_automation(
    name: str, body: AutomationRequest, session: SessionDep, runtime: RuntimeDep
) -> AutomationPublic:
    """Pause or resume the automatic loop of the named model; a change is an `automation.paused` /
    `automation.resumed` event naming it. Resuming a configured pause (`automation_paused`) is a 409
    saying what to change."""
    return _set(body, session, runtime, name)
