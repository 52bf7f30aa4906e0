"""The retrain queue: single-flight enqueue, claim, finish and recovery of jobs.

The database is the coordinator: `retrain_jobs.active_key` is UNIQUE and holds the model name while a
job is queued, running or promoting, so one active job per model holds across every process; a queued
job is claimed with a conditional UPDATE, so only one worker runs it. Every later status change is a
compare-and-set on the status the caller expects (running -> promoting -> finished), so a finished job is
never rewritten and recovery and a late worker cannot both close it. Store functions take a session and
only flush; the caller's use case owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.alerts.outbox import emit
from service.codec import dumps
from service.config import Settings
from service.db.tables import RetrainJob, utcnow

ACTIVE = ("queued", "running", "promoting")
#: a worker holds the job; `promoting`: its intent is recorded, aliases may move
IN_FLIGHT = ("running", "promoting")
FINISHED = ("succeeded", "rejected", "failed")


@dataclass(frozen=True)
class Enqueued:
    job: RetrainJob
    created: bool


def lock_model(session: Session, model_name: str) -> None:
    """Serialize decisions about one model's jobs until the transaction ends (cooldown, budget and
    single flight are then decided on what every other process has committed)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"retrain:{model_name}"}
        )
    else:  # SQLite: take the database's write lock now, not at the first insert
        session.execute(sa.text("UPDATE retrain_jobs SET id = id WHERE 0"))


def enqueue(
    session: Session,
    *,
    model_name: str,
    trigger: str,
    reason: str = "",
    episode_id: int | None = None,
    drift_run_id: int | None = None,
    force: bool = False,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
) -> Enqueued:
    """Queue a job, or return the model's active job if one is already queued or running."""
    lock_model(session, model_name)
    active = session.exec(select(RetrainJob).where(RetrainJob.active_key == model_name)).first()
    if active is not None:
        return Enqueued(active, False)
    job = RetrainJob(
        model_name=model_name, active_key=model_name, status="queued", trigger=trigger, reason=reason,
        episode_id=episode_id, drift_run_id=drift_run_id, force=force, window_start=window_start,
        window_end=window_end, created_at=utcnow(),
    )  # fmt: skip
    session.add(job)
    session.flush()
    return Enqueued(job, True)


def next_queued(session: Session, model_name: str) -> RetrainJob | None:
    return session.exec(
        select(RetrainJob)
        .where(RetrainJob.model_name == model_name, RetrainJob.status == "queued")
        .order_by(col(RetrainJob.created_at))
    ).first()


def claim(session: Session, job_id: int) -> bool:
    """Move a queued job to running; False if another worker claimed it first."""
    now = utcnow()
    claimed = (
        session.connection()
        .execute(
            sa.update(RetrainJob)
            .where(col(RetrainJob.id) == job_id, col(RetrainJob.status) == "queued")
            .values(status="running", started_at=now, heartbeat_at=now)
        )
        .rowcount
    )
    return bool(claimed)


def job_links(settings: Settings, job_id: int | None) -> dict[str, str]:
    return {"job": f"{settings.public_url}/v1/retrain/jobs/{job_id}", "dashboard": f"{settings.public_url}/"}


def finish(
    session: Session,
    job: RetrainJob,
    *,
    status: str,
    settings: Settings,
    events: list[tuple[str, str, dict[str, Any]]],
    version: str | None = None,
    details: dict[str, Any] | None = None,
    error: str | None = None,
    expected: Sequence[str] = IN_FLIGHT,
    stale_before: datetime | None = None,
) -> RetrainJob | None:
    """Close a job whose status is one of `expected` (and, with `stale_before`, whose heartbeat is older)
    and add its events (the outbox: same transaction); None if not (a finished job is never rewritten,
    so recovery and a late worker cannot both close it, and recovery never closes a live job)."""
    if status not in FINISHED:
        raise ValueError(f"status must be one of {FINISHED}, got {status!r}")
    values: dict[str, Any] = {
        "status": status, "active_key": None, "finished_at": utcnow(), "result_version": version,
        "error": error,
    }  # fmt: skip
    if details is not None:
        values["details"] = dumps(details)
    where = [col(RetrainJob.id) == job.id, col(RetrainJob.status).in_(list(expected))]
    if stale_before is not None:
        where.append(_last_sign() < stale_before)
    closed = session.connection().execute(sa.update(RetrainJob).where(*where).values(**values)).rowcount
    if not closed:
        return None
    for type_, summary, data in events:
        emit(
            session, type=type_, model_name=job.model_name, model_version=version or job.champion_version,
            summary=summary, data={"job_id": job.id, **data}, links=job_links(settings, job.id),
        )  # fmt: skip
    session.flush()
    row = session.get(RetrainJob, job.id)
    if row is not None:
        session.refresh(row)
    return row


def record_intent(session: Session, job_id: int, *, intent: dict[str, Any]) -> bool:
    """running -> promoting with the intent (`expected_champion`, `challenger`, `previous_champion`) in
    the job's details; False if the job is no longer running (recovery closed it: do not promote)."""
    moved = (
        session.connection()
        .execute(
            sa.update(RetrainJob)
            .where(col(RetrainJob.id) == job_id, col(RetrainJob.status) == "running")
            .values(
                status="promoting", champion_version=intent["expected_champion"],
                result_version=intent["challenger"], details=dumps({"promotion": intent}),
                heartbeat_at=utcnow(),
            )
        )
        .rowcount
    )  # fmt: skip
    return bool(moved)


def beat(session: Session, job_id: int) -> bool:
    """Renew the heartbeat of a job its worker still holds; False once it is not in flight any more."""
    renewed = (
        session.connection()
        .execute(
            sa.update(RetrainJob)
            .where(col(RetrainJob.id) == job_id, col(RetrainJob.status).in_(IN_FLIGHT))
            .values(heartbeat_at=utcnow())
        )
        .rowcount
    )
    return bool(renewed)


def stale_jobs(session: Session, *, cutoff: datetime, model_name: str | None = None) -> list[RetrainJob]:
    """In-flight jobs (of one model, or all) whose heartbeat (or start, before the first beat) is older
    than `cutoff`."""
    query = select(RetrainJob).where(col(RetrainJob.status).in_(IN_FLIGHT), _last_sign() < cutoff)
    if model_name is not None:
        query = query.where(RetrainJob.model_name == model_name)
    return list(session.exec(query.order_by(col(RetrainJob.id))).all())


def _last_sign() -> Any:
    """When the worker last showed it lives: its heartbeat, or its start before the first beat."""
    return sa.func.coalesce(col(RetrainJob.heartbeat_at), col(RetrainJob.started_at))


def promoting_job(session: Session, model_name: str) -> RetrainJob | None:
    """The model's job between its recorded promotion intent and its end, if any."""
    return session.exec(
        select(RetrainJob).where(RetrainJob.model_name == model_name, RetrainJob.status == "promoting")
    ).first()
