"""The scheduler: APScheduler 3.x jobs, each run under a database lease so two schedulers never double work.

APScheduler's job stores cannot be shared between processes, so every scheduler keeps its jobs in memory
and the lease (plus idempotent, window-keyed job bodies) makes the work happen once. `background_jobs` is
the one list of what runs in the background; nothing registers jobs from elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from service.alerts.background import JOB_NAME as DISPATCHER_JOB
from service.alerts.background import WATCHDOG_SECONDS, ensure_dispatcher, stop_dispatchers
from service.config import Settings
from service.db.leases import hold_lease, new_holder
from service.db.tables import utcnow
from service.lifecycle.retention import run_retention
from service.monitor import Monitor
from service.retraining import triggers, worker

if TYPE_CHECKING:
    from retrain.registry import Registry
    from service.runtime import Runtime

log = logging.getLogger("driftloop.scheduler")

JobFunc = Callable[[Settings, sa.Engine], Any]


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: JobFunc
    seconds: float
    lease: bool = True

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError(f"job {self.name!r}: seconds must be positive, got {self.seconds}")


def run_job(spec: JobSpec, settings: Settings, engine: sa.Engine, holder: str) -> bool:
    """Run one job body if this scheduler gets its lease; True if it ran."""
    try:
        if not spec.lease:
            spec.func(settings, engine)
            return True
        with hold_lease(engine, f"job:{spec.name}", holder, settings.lease_seconds) as acquired:
            if not acquired:
                log.debug("job %s skipped: another scheduler holds its lease", spec.name)
                return False
            spec.func(settings, engine)
            return True
    except Exception:
        # a failed run is retried at the next interval; nothing half-written stays (one transaction per run)
        log.exception("job %s failed", spec.name)
        return False


def background_jobs(settings: Settings, monitor: Monitor, registry: Registry | None) -> list[JobSpec]:
    """Everything a scheduler runs: the checks, webhook delivery and retraining (trigger on episodes,
    run queued jobs; the worker only where a registry is reachable)."""
    interval = settings.drift_check_interval

    def trigger(s: Settings, e: sa.Engine) -> None:
        # recovery first: a dead worker's job (no heartbeat) is ended as MLflow says, freeing its model
        worker.fail_stale(e, settings=s, registry=registry)
        triggers.trigger_for_open_episodes(e, s)

    specs = [
        JobSpec("drift-check", lambda _s, _e: monitor.run_due("drift"), interval),
        JobSpec("performance-check", lambda _s, _e: monitor.run_due("performance"), interval),
        # no lease: delivery claims keep dispatchers of several schedulers apart
        JobSpec(DISPATCHER_JOB, ensure_dispatcher, WATCHDOG_SECONDS, lease=False),
        JobSpec("retrain-trigger", trigger, settings.retrain_poll_seconds),
        # daily rollups, then retention in short batches (service/lifecycle/retention.py)
        JobSpec("retention", lambda s, e: run_retention(e, s), settings.retention_interval_seconds),
    ]
    if registry is not None:
        specs.append(
            JobSpec(
                "retrain-worker",
                lambda s, e: worker.run_next(e, settings=s, registry=registry),
                settings.retrain_poll_seconds,
            )
        )
    return specs


def build_scheduler(
    settings: Settings,
    engine: sa.Engine,
    jobs: Sequence[JobSpec],
    *,
    blocking: bool = False,
) -> BaseScheduler:
    """A scheduler (not started) running `jobs`; every job runs once at start, then every `seconds`."""
    defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    scheduler: BaseScheduler = (BlockingScheduler if blocking else BackgroundScheduler)(
        job_defaults=defaults, timezone="UTC"
    )
    holder = new_holder()
    names = [spec.name for spec in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names must be unique, got {names}")
    for spec in jobs:
        scheduler.add_job(
            run_job,
            "interval",
            args=(spec, settings, engine, holder),
            seconds=spec.seconds,
            id=spec.name,
            name=spec.name,
            next_run_time=utcnow(),
        )
    return scheduler


@asynccontextmanager
async def embedded_scheduler(runtime: Runtime) -> AsyncIterator[BaseScheduler]:
    """The scheduler inside `driftloop serve`: the champion is the version this process serves."""
    from service.monitor.sources import serving_monitor

    jobs = background_jobs(runtime.settings, serving_monitor(runtime), runtime.registry)
    scheduler = build_scheduler(runtime.settings, runtime.engine, jobs)
    scheduler.start()
    log.info("embedded scheduler started: %s", ", ".join(j.id for j in scheduler.get_jobs()))
    try:
        yield scheduler
    finally:
        # a running check finishes its transaction; do not block the event loop while it does
        await asyncio.to_thread(scheduler.shutdown, True)
        await asyncio.to_thread(stop_dispatchers)


def run_scheduler_forever(settings: Settings) -> None:
    """`driftloop scheduler`: run the jobs in this process until SIGINT / SIGTERM."""
    from service.db.engine import ensure_migrated, make_engine
    from service.monitor.sources import RegistryReferences, registry_champion
    from service.runtime import make_registry

    engine = make_engine(settings.resolved_database_url)
    ensure_migrated(engine)
    registry = make_registry(settings)
    monitor = Monitor(
        settings,
        engine,
        champion_version=registry_champion(registry),
        references=RegistryReferences(registry),
    )
    scheduler = build_scheduler(settings, engine, background_jobs(settings, monitor, registry), blocking=True)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    log.info("scheduler started: %s", ", ".join(j.id for j in scheduler.get_jobs()))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        stop_dispatchers()
        engine.dispose()
