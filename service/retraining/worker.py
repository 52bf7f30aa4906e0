"""The retrain worker: run one claimed job to its end (queue: `queue.py`; triggers: `triggers.py`).

Each step that changes the database is one transaction owned here: the claim, the `retrain.started`
event, and the job's end with its events (the outbox).
"""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session

from service.alerts.outbox import emit
from service.config import Settings
from service.db.tables import RetrainJob, utcnow
from service.retraining import queue
from service.retraining.training_data import TARGET, TIME, labeled_rows

if TYPE_CHECKING:
    from retrain.registry import Registry

log = logging.getLogger("driftloop.jobs")


def run_job(engine: sa.Engine, job: RetrainJob, *, settings: Settings, registry: Registry) -> RetrainJob:
    """Run one claimed job to its end; every failure is recorded with its reason, champion untouched."""
    from retrain.errors import RetrainError
    from retrain.loop import run_retrain
    from service.monitor.references import store_reference

    name = job.model_name
    try:
        champion = registry.champion(name)
        features = [c.name for c in registry.input_schema(name, champion.version)] if champion else []
        with Session(engine, expire_on_commit=False) as session, session.begin():
            row = session.get(RetrainJob, job.id)
            assert row is not None
            row.champion_version = champion.version if champion else None
            session.add(row)
            emit(
                session, type="retrain.started", model_name=name,
                model_version=row.champion_version, summary=f"retrain job {job.id} started: {job.reason}",
                data={"job_id": job.id, "trigger": job.trigger, "episode_id": job.episode_id},
                links=queue.job_links(settings, job.id),
            )  # fmt: skip
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
        return _finish(engine, job, status="rejected", settings=settings, version=version, details=details,
                       events=[rejected])  # fmt: skip
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


def _finish(engine: sa.Engine, job: RetrainJob, **kwargs: Any) -> RetrainJob:
    """End the job in one transaction; a job another process already ended is returned as it stands."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = queue.finish(session, job, **kwargs)
        if row is None:
            log.warning("retrain job %s had already finished; its recorded end stands", job.id)
            row = session.get(RetrainJob, job.id)
        assert row is not None
        return row


def _fail(engine: sa.Engine, job: RetrainJob, settings: Settings, reason: str) -> RetrainJob:
    log.warning("retrain job %s failed: %s", job.id, reason)
    return _finish(
        engine, job, status="failed", settings=settings, error=reason[:4000],
        events=[("retrain.failed", f"retrain job {job.id} failed: {reason[:300]}", {"error": reason[:2000]})],
    )  # fmt: skip


def run_next(engine: sa.Engine, *, settings: Settings, registry: Registry) -> RetrainJob | None:
    """Claim and run the oldest queued job of the configured model, if any."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        job = queue.next_queued(session, settings.model_name)
        if job is None or job.id is None or not queue.claim(session, job.id):
            return None
    job.status = "running"
    return run_job(engine, job, settings=settings, registry=registry)


def fail_stale(engine: sa.Engine, *, settings: Settings, older_than_seconds: float) -> int:
    """Jobs left `running` by a worker that died are failed (the champion never moved: promotion is last)."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    with Session(engine, expire_on_commit=False) as session:
        stale = queue.stale_jobs(session, cutoff=cutoff)
    for job in stale:
        _fail(engine, job, settings, f"worker stopped while the job was running (no progress for "
                                     f"{older_than_seconds:.0f} s); champion unchanged")  # fmt: skip
    return len(stale)
