"""Recovery: jobs whose worker died (heartbeat older than `retrain_stale_minutes`) are ended by the truth.

Run by the retrain-trigger scheduler job before it queues anything, so a dead worker's job frees its
model within minutes and no second job ever runs beside a live one (a job with a fresh heartbeat is never
touched). A `running` job never moved an alias (the intent is recorded before any move): it fails with
"champion unchanged" and the versions it registered are tagged orphaned. A `promoting` job is settled
from MLflow's aliases (`promotion.settle`). A registry that cannot be reached leaves the job for the next
run: retraining needs the registry anyway, and an unverified end would be a guess. A rollback left
`moving` (its process died between intent and end) is settled the same way (`rollback.settle_rollbacks`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session

from service.config import Settings
from service.db.tables import RetrainJob, utcnow
from service.retraining import queue
from service.retraining.heartbeat import stale_seconds
from service.retraining.orphans import tag_orphans
from service.retraining.promotion import Intent, settle, try_end_job
from service.retraining.rollback import recover_rollbacks

if TYPE_CHECKING:
    from retrain.registry import Registry

log = logging.getLogger("driftloop.jobs")


def reconcile(
    engine: sa.Engine,
    *,
    settings: Settings,
    registry: Registry | None = None,
    older_than_seconds: float | None = None,
    model_name: str | None = None,
) -> int:
    """End every in-flight job (of `model_name`, default every model's) whose heartbeat is older than
    `older_than_seconds` (default: the `retrain_stale_minutes` setting), and every rollback left
    `moving`; returns how many were ended.
    Without a registry, `promoting` jobs are left for a process that has one and orphans are not
    looked for."""
    limit = stale_seconds(settings) if older_than_seconds is None else older_than_seconds
    cutoff = utcnow() - timedelta(seconds=limit)
    with Session(engine, expire_on_commit=False) as session:
        stale = queue.stale_jobs(session, cutoff=cutoff, model_name=model_name)
    ended = 0
    for job in stale:
        try:
            if _recover(engine, job, settings=settings, registry=registry, limit=limit, cutoff=cutoff):
                ended += 1
        except Exception as exc:  # MLflow down: nothing was ended, the next run tries again
            log.warning("recovery of retrain job %s postponed: %s", job.id, exc)
    if registry is not None:  # rollbacks whose process died between their alias moves
        try:
            ended += recover_rollbacks(engine, registry, settings, model_name)
        except Exception as exc:
            log.warning("recovery of rollbacks postponed: %s", exc)
    return ended


def _recover(
    engine: sa.Engine,
    job: RetrainJob,
    *,
    settings: Settings,
    registry: Registry | None,
    limit: float,
    cutoff: datetime,
) -> bool:
    silent = f"worker stopped (no heartbeat for more than {limit:.0f} s)"
    if job.status == "promoting":
        intent = Intent.of(job)
        if registry is None or intent is None:
            if intent is None:
                log.error("retrain job %s is promoting without a recorded intent", job.id)
            return False
        row = settle(engine, job, intent, settings=settings, registry=registry,
                     cause=f"{silent} while promoting", stale_before=cutoff)  # fmt: skip
        return row is not None
    assert job.id is not None
    orphaned: list[str] = []
    champion = "unchanged"
    if registry is not None:
        current = registry.champion(job.model_name)
        champion = f"unchanged (version {current.version if current else 'none'})"
        orphaned = tag_orphans(registry, job.model_name, job.id, reason=f"{silent} before promotion")
    reason = f"{silent} while running, before any promotion; champion {champion}"
    data = {"error": reason, "orphaned_versions": orphaned}
    row = try_end_job(
        engine, job, status="failed", settings=settings, error=reason, expected=("running",),
        stale_before=cutoff, details={"orphaned_versions": orphaned},
        events=[("retrain.failed", f"retrain job {job.id} failed: {reason[:300]}", data)],
    )  # fmt: skip
    return row is not None
