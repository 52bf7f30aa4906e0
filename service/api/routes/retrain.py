"""Retraining: manual trigger (admin) and job status. Jobs run in the scheduler/worker process."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlmodel import col, select

from service.api.deps import AdminDep, RuntimeDep, SessionDep
from service.api.routes._responses import errors
from service.api.schemas.timestamps import Timestamp
from service.db.tables import RetrainJob
from service.retraining.submit import submit

router = APIRouter(
    prefix="/v1/retrain", tags=["retraining"], responses=errors(400, 401, 403, 404, 409, 413, 422, 503)
)


_STATUSES = "^(queued|running|promoting|succeeded|rejected|failed)$"


class RetrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="Why a person asked for this retrain.")
    window_start: Timestamp | None = Field(default=None, description="Only labeled rows logged from here on.")
    window_end: Timestamp | None = Field(
        default=None, description="Only labeled rows logged until here (at or before window_start: a 409)."
    )
    force: StrictBool = Field(
        default=False, description="Promote even if the challenger does not pass the gate."
    )

    @property
    def empty(self) -> bool:
        """A window no row can be in: a valid request with nothing to learn from (the schema cannot say
        `window_start < window_end`, so it is a 409, not a 422)."""
        return bool(self.window_start and self.window_end and self.window_start >= self.window_end)


class RetrainJobPublic(BaseModel):
    id: int
    model_name: str
    status: str = Field(description="queued | running | promoting | succeeded | rejected | failed")
    trigger: str = Field(description="episode | drift_run | manual")
    reason: str
    episode_id: int | None
    drift_run_id: int | None
    force: bool
    window_start: datetime | None
    window_end: datetime | None
    champion_version: str | None
    result_version: str | None
    details: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None = Field(default=None, description="Last sign of life of the job's worker.")

    @classmethod
    def of(cls, job: RetrainJob) -> RetrainJobPublic:
        data = job.model_dump()
        data["details"] = orjson.loads(job.details or "{}")
        return cls.model_validate(data)


class RetrainAccepted(BaseModel):
    created: bool = Field(description="False when an active job already existed and is returned instead.")
    job: RetrainJobPublic


@router.post("", status_code=202, response_model=RetrainAccepted, dependencies=[AdminDep])
async def trigger_retrain(body: RetrainRequest, runtime: RuntimeDep, response: Response) -> RetrainAccepted:
    if body.empty:
        raise HTTPException(409, "the window holds no rows: window_start is not before window_end")
    result = await asyncio.to_thread(
        submit,
        runtime.engine,
        model_name=runtime.settings.model_name,
        trigger="manual",
        reason=body.reason,
        force=body.force,
        window_start=body.window_start,
        window_end=body.window_end,
    )
    response.headers["Location"] = f"/v1/retrain/jobs/{result.job.id}"
    return RetrainAccepted(created=result.created, job=RetrainJobPublic.of(result.job))


@router.get("/jobs", response_model=list[RetrainJobPublic])
def list_jobs(
    session: SessionDep,
    status: str | None = Query(default=None, pattern=_STATUSES),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=10_000_000),
) -> list[RetrainJobPublic]:
    query = select(RetrainJob)
    if status:
        query = query.where(RetrainJob.status == status)
    rows = session.exec(query.order_by(col(RetrainJob.id).desc()).offset(offset).limit(limit)).all()
    return [RetrainJobPublic.of(r) for r in rows]


@router.get("/jobs/{job_id}", response_model=RetrainJobPublic)
def get_job(job_id: Annotated[int, Path(ge=1, le=2**31 - 1)], session: SessionDep) -> RetrainJobPublic:
    job = session.get(RetrainJob, job_id)
    if job is None:
        raise HTTPException(404, f"retrain job {job_id} not found")
    return RetrainJobPublic.of(job)
