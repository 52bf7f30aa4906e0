"""The scheduler: APScheduler 3.x jobs, each run under a database lease so two schedulers never double work.

APScheduler's job stores cannot be shared between processes, so every scheduler keeps its jobs in memory
and the lease (plus idempotent, window-keyed job bodies) makes the work happen once. `background_jobs` is
the one list of what runs in the background; nothing registers jobs from elsewhere.

One scheduler serves every watched model. A per-model job (the checks, the retrain trigger and worker)
runs its body once per model at each tick, each model with its own settings, under its own lease
(`job:<job>:<model>`) on a thread of the job's own pool (`PerModelJob`): a model whose check is slow stays
in flight alone and is skipped at later ticks until it ends, while the others run at every tick. Models
start in turn (the first model of a tick is the second of the one before), so when the pool is busy every
model waits as long as any other.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from service.alerts.background import JOB_NAME as DISPATCHER_JOB
from service.alerts.background import WATCHDOG_SECONDS, ensure_dispatcher, stop_dispatchers
from service.config import Settings
from service.db.leases import hold_lease, new_holder
from service.db.tables import utcnow
from service.lifecycle.retention import run_retention
from service.lifecycle.scheduled_export import run_scheduled_export
from service.monitor.sources import WatchedModels
from service.retraining import triggers, worker
from service.serving.fleet import UnknownModel

if TYPE_CHECKING:
    from retrain.registry import Registry
    from service.runtime import Runtime

log = logging.getLogger("driftloop.scheduler")

JobFunc = Callable[[Settings, sa.Engine], Any]
#: threads per per-model job: a slow model holds one, the other serves the rest. On PostgreSQL a run holds
#: two connections at most (its lease's and its work's): 4 jobs x 2 x 2 = 16 of a process's 30
MODEL_WORKERS = 2


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: JobFunc
    seconds: float
    lease: bool = True
    # set: `func` runs once per watched model with that model's settings, under the lease job:<name>:<model>
    models: WatchedModels | None = None

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


class PerModelJob:
    """One tick of a per-model job: start the body for each watched model not still in flight, and return
    without waiting (a model whose run outlasts the interval stays in flight and the next tick skips it;
    APScheduler never sees a tick overlap the next)."""

    def __init__(self, spec: JobSpec, settings: Settings, engine: sa.Engine, holder: str) -> None:
        assert spec.models is not None
        self.spec, self.models, self.settings = spec, spec.models, settings
        self.engine, self.holder = engine, holder
        self.pool = ThreadPoolExecutor(MODEL_WORKERS, thread_name_prefix=f"job:{spec.name}")
        self.in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._turn = 0

    def tick(self) -> dict[str, Future[bool]]:
        """The runs started by this tick, by model (the scheduler calls it; tests call it directly)."""
        try:
            names = list(self.models.names())
        except Exception:
            log.exception("job %s: the watched models could not be read", self.spec.name)
            return {}
        if names:
            self._turn = (self._turn + 1) % len(names)
            names = names[self._turn :] + names[: self._turn]
        started: dict[str, Future[bool]] = {}
        for name in names:
            with self._lock:
                if name in self.in_flight:
                    log.debug("job %s: %s still runs; skipped this tick", self.spec.name, name)
                    continue
                self.in_flight.add(name)
            try:
                started[name] = self.pool.submit(self._run, name)
            except RuntimeError:  # shut down
                with self._lock:
                    self.in_flight.discard(name)
                break
        return started

    def _run(self, name: str) -> bool:
        try:
            try:
                settings = self.models.settings_for(name)
            except (UnknownModel, KeyError):
                return False  # no longer watched
            with hold_lease(self.engine, f"job:{self.spec.name}:{name}", self.holder,
                            self.settings.lease_seconds) as acquired:  # fmt: skip
                if not acquired:
                    log.debug("job %s of %s skipped: another scheduler holds its lease", self.spec.name, name)
                    return False
                self.spec.func(settings, self.engine)
                return True
        except Exception:  # retried at the next tick; one model's failure never stops another's job
            log.exception("job %s of model %s failed", self.spec.name, name)
            return False
        finally:
            with self._lock:
                self.in_flight.discard(name)

    def close(self) -> None:
        """Drop queued runs; running ones finish (each owns its transaction)."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def background_jobs(settings: Settings, models: WatchedModels, registry: Registry | None) -> list[JobSpec]:
    """Everything a scheduler runs: the checks, webhook delivery and retraining (trigger on episodes,
    run queued jobs; the worker only where a registry is reachable). A spec with `models` runs per
    watched model with that model's settings (`s`)."""
    interval = settings.drift_check_interval

    def trigger(s: Settings, e: sa.Engine) -> None:
        # recovery first: a dead worker's job (no heartbeat) is ended as MLflow says, freeing its model
        worker.fail_stale(e, settings=s, registry=registry, model_name=s.model_name)
        triggers.trigger_for_open_episodes(e, s)

    specs = [
        JobSpec("drift-check", lambda s, _e: models.monitor(s).run_due("drift"), interval, models=models),
        JobSpec(
            "performance-check",
            lambda s, _e: models.monitor(s).run_due("performance"),
            interval,
            models=models,
        ),  # fmt: skip
        # no lease: delivery claims keep dispatchers of several schedulers apart
        JobSpec(DISPATCHER_JOB, ensure_dispatcher, WATCHDOG_SECONDS, lease=False),
        JobSpec("retrain-trigger", trigger, settings.retrain_poll_seconds, models=models),
        # daily rollups, then retention in short batches (service/lifecycle/retention.py)
        JobSpec("retention", lambda s, e: run_retention(e, s), settings.retention_interval_seconds),
    ]
    if settings.export_url:  # every model's complete days to the lake (lifecycle/scheduled_export.py)
        specs.append(
            JobSpec("export", lambda s, e: run_scheduled_export(e, s), settings.export_interval_seconds)
        )
    if registry is not None:
        specs.append(
            JobSpec(
                "retrain-worker",
                lambda s, e: worker.run_next(e, settings=s, registry=registry),
                settings.retrain_poll_seconds,
                models=models,
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
    """A scheduler (not started) running `jobs`; every job runs once at start, then every `seconds`.
    Its shutdown also ends the per-model pools (queued runs dropped, running ones finish)."""
    defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    scheduler: BaseScheduler = (BlockingScheduler if blocking else BackgroundScheduler)(
        job_defaults=defaults, timezone="UTC"
    )
    holder = new_holder()
    names = [spec.name for spec in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names must be unique, got {names}")
    fanned: list[PerModelJob] = []
    for spec in jobs:
        if spec.models is not None:
            job = PerModelJob(spec, settings, engine, holder)
            fanned.append(job)
            func: Callable[..., Any] = job.tick
            args: tuple[Any, ...] = ()
        else:
            func, args = run_job, (spec, settings, engine, holder)
        scheduler.add_job(
            func,
            "interval",
            args=args,
            seconds=spec.seconds,
            id=spec.name,
            name=spec.name,
            next_run_time=utcnow(),
        )

    def close(_event: object) -> None:
        for job in fanned:
            job.close()

    scheduler.add_listener(close, EVENT_SCHEDULER_SHUTDOWN)
    return scheduler


@asynccontextmanager
async def embedded_scheduler(runtime: Runtime) -> AsyncIterator[BaseScheduler]:
    """The scheduler inside `driftloop serve`: it watches the models this process serves
    (`runtime.model_names`, read at every tick), each one's champion the version the process serves."""
    from service.monitor.sources import serving_models

    jobs = background_jobs(runtime.settings, serving_models(runtime), runtime.registry)
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
    from service.monitor.sources import registry_models
    from service.runtime import make_registry

    engine = make_engine(settings.resolved_database_url)
    ensure_migrated(engine)
    registry = make_registry(settings)
    models = registry_models(settings, engine, registry)
    log.info("watching %s", ", ".join(models.names()))
    scheduler = build_scheduler(settings, engine, background_jobs(settings, models, registry), blocking=True)
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
