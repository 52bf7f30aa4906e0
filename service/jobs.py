"""Retrain jobs: single-flight queueing and the worker step (triggers: service/retrain_triggers.py).

The database is the coordinator: `retrain_jobs.active_key` is UNIQUE and holds the model name while a
job is queued or running, so one active job per model holds across every process; a queued job is
claimed with a conditional UPDATE, so only one worker runs it.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.config import Settings
from service.events import emit
from service.models import RetrainJob, utcnow
from service.repository import dumps

log = logging.getLogger("driftloop.jobs")

ACTIVE = ("queued", "running")
TARGET, TIME = "target", "timestamp"


class RegistryLike(Protocol):
    def champion(self, name: str) -> Any: ...
    def load_reference(self, name: str, version: str) -> pd.DataFrame | None: ...
    def input_schema(self, name: str, version: str) -> list[Any]: ...


@dataclass(frozen=True)
class Enqueued:
    job: RetrainJob
    created: bool


def enqueue(
    engine: sa.Engine,
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
    job = RetrainJob(
        model_name=model_name,
        active_key=model_name,
        status="queued",
        trigger=trigger,
        reason=reason,
        episode_id=episode_id,
        drift_run_id=drift_run_id,
        force=force,
        window_start=window_start,
        window_end=window_end,
        created_at=utcnow(),
    )
    with Session(engine, expire_on_commit=False) as session:
        session.add(job)
        try:
            session.commit()
            return Enqueued(job, True)
        except sa.exc.IntegrityError:
            session.rollback()
    with Session(engine, expire_on_commit=False) as session:
        active = session.exec(select(RetrainJob).where(RetrainJob.active_key == model_name)).first()
    if active is None:  # finished between our insert and this read: try once more
        return enqueue(
            engine, model_name=model_name, trigger=trigger, reason=reason, episode_id=episode_id,
            drift_run_id=drift_run_id, force=force, window_start=window_start, window_end=window_end,
        )  # fmt: skip
    return Enqueued(active, False)


def labeled_rows(
    engine: sa.Engine,
    *,
    model_name: str,
    limit: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """The most recent labeled production rows (predictions joined with feedback), oldest first."""
    query = (
        "SELECT p.created_at, p.features, f.label FROM predictions p "
        "JOIN feedback f ON f.prediction_id = p.id WHERE p.model_name = :name"
    )
    params: dict[str, Any] = {"name": model_name, "limit": limit}
    if start is not None:
        query += " AND p.created_at >= :start"
        params["start"] = start
    if end is not None:
        query += " AND p.created_at <= :end"
        params["end"] = end
    query += " ORDER BY p.created_at DESC LIMIT :limit"
    with engine.connect() as conn:
        rows = conn.execute(sa.text(query), params).all()
    records = [{**orjson.loads(f), TARGET: orjson.loads(label), TIME: ts} for ts, f, label in reversed(rows)]
    return pd.DataFrame.from_records(records)


def _claim(engine: sa.Engine, job_id: int) -> bool:
    with engine.begin() as conn:
        claimed = conn.execute(
            sa.update(RetrainJob)
            .where(col(RetrainJob.id) == job_id, col(RetrainJob.status) == "queued")
            .values(status="running", started_at=utcnow())
        ).rowcount
    return bool(claimed)


def _finish(
    engine: sa.Engine,
    job: RetrainJob,
    *,
    status: str,
    settings: Settings,
    events: list[tuple[str, str, dict[str, Any]]],
    version: str | None = None,
    details: dict[str, Any] | None = None,
    error: str | None = None,
) -> RetrainJob:
    """Close the job and emit its events in one transaction (the outbox)."""
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(RetrainJob, job.id)
        assert row is not None
        row.status, row.active_key, row.finished_at = status, None, utcnow()
        row.result_version, row.error = version, error
        if details is not None:
            row.details = dumps(details)
        session.add(row)
        links = {
            "job": f"{settings.public_url}/v1/retrain/jobs/{job.id}",
            "dashboard": f"{settings.public_url}/",
        }
        for type_, summary, data in events:
            emit(
                session, type=type_, model_name=job.model_name, model_version=version or job.champion_version,
                summary=summary, data={"job_id": job.id, **data}, links=links,
            )  # fmt: skip
        session.commit()
        return row


def run_job(engine: sa.Engine, job: RetrainJob, *, settings: Settings, registry: Any) -> RetrainJob:
    """Run one claimed job to its end; every failure is recorded with its reason, champion untouched."""
    from retrain.errors import RetrainError
    from retrain.loop import run_retrain
    from service.references import store_reference

    name = job.model_name
    try:
        champion = registry.champion(name)
        features = [c.name for c in registry.input_schema(name, champion.version)] if champion else []
        with Session(engine, expire_on_commit=False) as session:
            row = session.get(RetrainJob, job.id)
            assert row is not None
            row.champion_version = champion.version if champion else None
            session.add(row)
            emit(
                session, type="retrain.started", model_name=name,
                model_version=row.champion_version, summary=f"retrain job {job.id} started: {job.reason}",
                data={"job_id": job.id, "trigger": job.trigger, "episode_id": job.episode_id},
                links={"job": f"{settings.public_url}/v1/retrain/jobs/{job.id}"},
            )  # fmt: skip
            session.commit()
            job = row
        labeled = labeled_rows(
            engine,
            model_name=name,
            limit=settings.retrain_window_rows,
            start=job.window_start,
            end=job.window_end,
        )
        reference = registry.load_reference(name, champion.version) if champion else None
        tags = {"trigger": job.trigger, "job_id": str(job.id), "reason": job.reason[:250]}
        if job.episode_id is not None:
            tags["episode_id"] = str(job.episode_id)
        if job.drift_run_id is not None:
            tags["drift_run_id"] = str(job.drift_run_id)
        outcome = run_retrain(
            registry,
            name,
            labeled if len(labeled) else pd.DataFrame(columns=[*features, TARGET, TIME]),
            features=features,
            target=TARGET,
            time_column=TIME,
            reference=reference,
            policy=settings.retrain_data_policy,
            holdout_fraction=settings.retrain_holdout_fraction,
            min_rows=settings.retrain_min_rows,
            metric=settings.performance_metric,
            margin=settings.retrain_margin,
            recipe=settings.retrain_recipe,
            force=job.force,
            tags=tags,
        )
    except RetrainError as exc:
        return _fail(engine, job, settings, str(exc))
    except Exception as exc:  # never leave a job running; the champion was not moved
        log.error("retrain job %s crashed: %s", job.id, traceback.format_exc())
        return _fail(engine, job, settings, f"{exc.__class__.__name__}: {exc}")

    ev = outcome.evaluation
    details = {
        "metric": ev.metric,
        "champion_score": ev.champion_score,
        "challenger_score": ev.challenger_score,
        "champion_metrics": ev.champion_metrics,
        "challenger_metrics": ev.challenger_metrics,
        "margin": ev.margin,
        "n_train": outcome.n_train,
        "n_holdout": outcome.n_holdout,
        "labeled_rows": len(labeled),
        "policy": settings.retrain_data_policy,
        "reason": outcome.reason,
    }
    score_text = f"{ev.metric} {ev.challenger_score:.4f} vs champion {ev.champion_score:.4f}"
    version = outcome.challenger_version
    if outcome.status == "rejected":
        rejected = ("model.rejected", f"version {version} rejected: {score_text}", details)
        return _finish(
            engine,
            job,
            status="rejected",
            settings=settings,
            version=version,
            details=details,
            events=[rejected],
        )
    try:
        data = registry.load_reference(name, version)
        if data is not None:
            store_reference(
                engine, model_name=name, model_version=version, data=data, features=features,
                source=f"retrain job {job.id}", performance=dict(ev.challenger_metrics),
            )  # fmt: skip
    except Exception as exc:  # monitoring refits lazily from the registry if this fails
        log.warning("reference profile of version %s not stored: %s", version, exc)
    promoted = {**details, "previous_champion": outcome.champion_version_before}
    events = [
        ("retrain.succeeded", f"retrain job {job.id} trained version {version}", details),
        ("model.promoted", f"version {version} promoted to champion: {score_text}", promoted),
    ]
    return _finish(
        engine, job, status="succeeded", settings=settings, version=version, details=details, events=events
    )


def _fail(engine: sa.Engine, job: RetrainJob, settings: Settings, reason: str) -> RetrainJob:
    log.warning("retrain job %s failed: %s", job.id, reason)
    return _finish(
        engine, job, status="failed", settings=settings, error=reason[:4000],
        events=[("retrain.failed", f"retrain job {job.id} failed: {reason[:300]}", {"error": reason[:2000]})],
    )  # fmt: skip


def run_next(engine: sa.Engine, *, settings: Settings, registry: Any) -> RetrainJob | None:
    """Claim and run the oldest queued job of the configured model, if any."""
    with Session(engine, expire_on_commit=False) as session:
        job = session.exec(
            select(RetrainJob)
            .where(RetrainJob.model_name == settings.model_name, RetrainJob.status == "queued")
            .order_by(col(RetrainJob.created_at))
        ).first()
    if job is None or job.id is None or not _claim(engine, job.id):
        return None
    job.status = "running"
    return run_job(engine, job, settings=settings, registry=registry)


def fail_stale(engine: sa.Engine, *, settings: Settings, older_than_seconds: float) -> int:
    """Jobs left `running` by a worker that died are failed (the champion never moved: promotion is last)."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    with Session(engine, expire_on_commit=False) as session:
        stale = session.exec(
            select(RetrainJob).where(RetrainJob.status == "running", col(RetrainJob.started_at) < cutoff)
        ).all()
    for job in stale:
        _fail(engine, job, settings, f"worker stopped while the job was running (no progress for "
                                     f"{older_than_seconds:.0f} s); champion unchanged")  # fmt: skip
    return len(stale)
