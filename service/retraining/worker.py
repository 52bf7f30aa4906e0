"""The retrain worker: run one claimed job to its end (queue: `queue.py`; triggers: `triggers.py`).

Each step that changes the database is one transaction owned here: the claim, the `retrain.started`
event, the promotion intent (`promotion.py`) and the job's end with its events (the outbox). A heartbeat
thread renews the job while it runs; recovery (`recovery.py`) ends only jobs whose heartbeat stopped.
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING

import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session

from service.alerts.outbox import emit
from service.config import Settings
from service.db.tables import RetrainJob
from service.retraining import post_change, queue, recovery
from service.retraining.heartbeat import Heartbeat, interval_seconds
from service.retraining.orphans import tag_orphans
from service.retraining.promotion import Guard, Intent, current, end_job, put_back, record_promoted, settle
from service.retraining.training_data import TARGET, TIME, labeled_rows

if TYPE_CHECKING:
    from retrain.registry import Registry

log = logging.getLogger("driftloop.jobs")


def run_job(engine: sa.Engine, job: RetrainJob, *, settings: Settings, registry: Registry) -> RetrainJob:
    """Run one claimed job to its end while beating its heartbeat; every failure is recorded with its
    reason (before the promotion intent: champion untouched; after it: as MLflow's aliases say)."""
    assert job.id is not None
    with Heartbeat(engine, job.id, interval_seconds(settings)):
        return _run(engine, job, settings=settings, registry=registry)


def _run(engine: sa.Engine, job: RetrainJob, *, settings: Settings, registry: Registry) -> RetrainJob:
    from retrain.errors import RetrainError
    from retrain.loop import run_retrain

    name = job.model_name
    guard = Guard(engine, job, settings, registry)
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
        change = post_change.change_at(engine, job)
        version_now = champion.version if champion else None
        metric = post_change.gate_metric(engine, registry, settings, name, version_now) if version_now else ""
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
            metric=metric or settings.performance_metric or "accuracy",
            margin=settings.retrain_margin,
            change_at=change,
            recipe=settings.retrain_recipe,
            force=job.force,
            tags=tags,
            promotion_guard=guard,
        )
    except Exception as exc:  # never leave a job running
        if not isinstance(exc, RetrainError):
            log.error("retrain job %s crashed: %s", job.id, traceback.format_exc())
        reason = str(exc) if isinstance(exc, RetrainError) else f"{exc.__class__.__name__}: {exc}"
        if guard.intent is not None:  # aliases may have moved: only MLflow can say whether they did
            return _settle(engine, job, guard.intent, settings, registry, reason)
        if guard.lost:  # recovery ended it meanwhile; the version this worker registered is an orphan
            _tag_orphans(registry, job, "its job was ended by recovery before the promotion")
            return current(engine, job)
        return _fail(engine, job, settings, reason)

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
        "dropped_rows": int(labeled.attrs.get("dropped_rows", 0)),  # unusable rows left out (non-finite)
        "policy": settings.retrain_data_policy,
        "reason": outcome.reason,
        **post_change.job_details(outcome, change),
    }
    score_text = f"{ev.metric} {ev.challenger_score:.4f} vs champion {ev.champion_score:.4f}"
    version = outcome.challenger_version
    if outcome.status == "rejected":
        # after the intent, a rejection is the compare-and-set: the champion changed during evaluation
        refused = guard.intent is not None
        why = outcome.reason.split(";")[0] if refused else score_text
        rejected = ("model.rejected", f"version {version} rejected: {why}", details)
        return end_job(engine, job, status="rejected", settings=settings, version=version, details=details,
                       events=[rejected], error=f"rejected: {why}" if refused else None,
                       expected=("promoting",) if refused else ("running",))  # fmt: skip
    assert guard.intent is not None, "a promotion happens inside the guard"
    row = record_promoted(
        engine, job, guard.intent, settings=settings, registry=registry, details=details,
        performance=dict(ev.challenger_metrics), how=score_text,
    )  # fmt: skip
    ended = row or current(engine, job)
    if row is None and ended.status != "succeeded":
        # recovery ended the job as not promoted while this worker stalled: the record stands
        try:
            put_back(engine, job, guard.intent, settings=settings, registry=registry)
        except Exception as exc:
            log.error("retrain job %s: the aliases could not be put back: %s", job.id, exc)
        return ended
    post_change.store_baseline(engine, name, version, outcome)
    return ended


def _settle(
    engine: sa.Engine, job: RetrainJob, intent: Intent, settings: Settings, registry: Registry, reason: str
) -> RetrainJob:
    """An error after the intent: end the job as the aliases say; if MLflow cannot say, leave it
    `promoting` (its heartbeat stops with this worker, and recovery settles it)."""
    try:
        row = settle(engine, job, intent, settings=settings, registry=registry,
                     cause=f"promotion interrupted ({reason})")  # fmt: skip
    except Exception as exc:
        log.error("retrain job %s left promoting, recovery settles it: %s", job.id, exc)
        row = None
    return row or current(engine, job)


def _tag_orphans(registry: Registry, job: RetrainJob, reason: str) -> None:
    assert job.id is not None
    try:
        tag_orphans(registry, job.model_name, job.id, reason=reason)
    except Exception as exc:
        log.warning("orphans of retrain job %s not tagged: %s", job.id, exc)


def _fail(engine: sa.Engine, job: RetrainJob, settings: Settings, reason: str) -> RetrainJob:
    log.warning("retrain job %s failed: %s", job.id, reason)
    return end_job(
        engine, job, status="failed", settings=settings, error=reason[:4000], expected=("running",),
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


def fail_stale(
    engine: sa.Engine,
    *,
    settings: Settings,
    registry: Registry | None = None,
    older_than_seconds: float | None = None,
    model_name: str | None = None,
) -> int:
    """Recovery of jobs whose worker died (no heartbeat for `retrain_stale_minutes`): see `recovery.py`."""
    return recovery.reconcile(
        engine, settings=settings, registry=registry, older_than_seconds=older_than_seconds,
        model_name=model_name,
    )  # fmt: skip
