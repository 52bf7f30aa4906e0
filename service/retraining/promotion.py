"""The promotion protocol of a retrain job, and how MLflow settles a promotion whose end was not recorded.

States: `running` -> `promoting` -> `succeeded` | `rejected` | `failed`; each move is a compare-and-set on
the status the mover expects.

1. Under the model's champion lease the job commits `promoting` with its intent: the expected champion E
   (the version evaluated against), the challenger C and P, `previous_champion` before. No alias moved yet.
2. `Registry.promote(C, expected_champion=E)`: champion != E -> `rejected` ("champion changed during
   evaluation"), nothing moves; else `previous_champion` := E, then `champion` := C, the move that decides.
3. The end commits with its events (`retrain.succeeded` + `model.promoted`), promoting -> succeeded.

When 3 does not happen (a crash, an MLflow error after 1), :func:`settle` decides from the aliases:
champion == C -> promoted (previous_champion := E if missing, the reference profile stored if missing);
otherwise failed with one `retrain.failed` (champion unchanged), `previous_champion` put back to P if the
crash fell between the two moves, and the challenger tagged orphaned.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session

from service.config import Settings
from service.db.tables import RetrainJob
from service.monitor.references import get_reference, performance_from_metrics, store_reference
from service.retraining import queue
from service.retraining.champion_lease import ChampionBusy, champion_lease
from service.retraining.orphans import tag_orphans

if TYPE_CHECKING:
    from retrain.registry import Registry

log = logging.getLogger("driftloop.jobs")

#: how long a promotion waits for a rollback (or recovery) holding the champion lease
LEASE_WAIT_SECONDS = 30.0


class JobLost(RuntimeError):
    """The job is no longer running (recovery closed it): its worker must not move any alias."""


@dataclass(frozen=True)
class Intent:
    expected_champion: str
    challenger: str
    previous_champion: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, job: RetrainJob) -> Intent | None:
        recorded = orjson.loads(job.details or "{}").get("promotion")
        if not isinstance(recorded, dict):
            return None
        return cls(str(recorded["expected_champion"]), str(recorded["challenger"]),
                   recorded.get("previous_champion"))  # fmt: skip


def end_job(engine: sa.Engine, job: RetrainJob, **kwargs: Any) -> RetrainJob:
    """End the job in one transaction (`queue.finish`); a job already ended is returned as it stands."""
    return try_end_job(engine, job, **kwargs) or current(engine, job)


def try_end_job(engine: sa.Engine, job: RetrainJob, **kwargs: Any) -> RetrainJob | None:
    """End the job in one transaction; None if `queue.finish` refused (ended already, or live)."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = queue.finish(session, job, **kwargs)
    if row is None:
        log.warning("retrain job %s was not ended here: its recorded state stands", job.id)
    return row


def current(engine: sa.Engine, job: RetrainJob) -> RetrainJob:
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(RetrainJob, job.id)
    assert row is not None
    return row


class Guard:
    """The `promotion_guard` of `retrain.loop.run_retrain` for one job: steps 1 and 2 run inside it."""

    def __init__(self, engine: sa.Engine, job: RetrainJob, settings: Settings, registry: Registry) -> None:
        self.engine, self.job, self.settings, self.registry = engine, job, settings, registry
        self.intent: Intent | None = None
        self.lost = False  # recovery closed the job before its intent: it must never promote

    @contextmanager
    def __call__(self, expected: str, challenger: str) -> Iterator[None]:
        from retrain.registry import PREVIOUS_CHAMPION

        name, job_id = self.job.model_name, self.job.id
        assert job_id is not None
        seconds = self.settings.lease_seconds
        with champion_lease(self.engine, name, seconds=seconds, wait=LEASE_WAIT_SECONDS) as held:
            if not held:
                raise ChampionBusy(f"the champion lease of {name!r} stayed taken {LEASE_WAIT_SECONDS:.0f} s")
            previous = self.registry.get_alias(name, PREVIOUS_CHAMPION)
            intent = Intent(expected, challenger, previous.version if previous else None)
            with Session(self.engine) as session, session.begin():
                if not queue.record_intent(session, job_id, intent=intent.as_dict()):
                    self.lost = True
                    raise JobLost(f"retrain job {job_id} is no longer running (recovery closed it)")
            self.intent = intent
            yield


def store_reference_if_missing(
    engine: sa.Engine, registry: Registry, job: RetrainJob, version: str, performance: dict[str, float] | None
) -> None:
    """The new champion's reference profile; best effort (monitoring refits lazily from the registry)."""
    name = job.model_name
    try:
        with Session(engine) as session:
            if get_reference(session, model_name=name, model_version=version) is not None:
                return
        data = registry.load_reference(name, version)
        if data is not None:
            features = [c.name for c in registry.input_schema(name, version)]
            store_reference(
                engine, model_name=name, model_version=version, data=data, features=features,
                source=f"retrain job {job.id}", performance=performance,
            )  # fmt: skip
    except Exception as exc:
        log.warning("reference profile of version %s not stored: %s", version, exc)


def record_promoted(
    engine: sa.Engine,
    job: RetrainJob,
    intent: Intent,
    *,
    settings: Settings,
    registry: Registry,
    details: dict[str, Any],
    performance: dict[str, float] | None,
    how: str,
    stale_before: datetime | None = None,
) -> RetrainJob | None:
    """Step 3: the reference profile, then `succeeded` with `retrain.succeeded` + `model.promoted`;
    None if the job was not `promoting` any more (or, with `stale_before`, its worker beat again)."""
    version = intent.challenger
    store_reference_if_missing(engine, registry, job, version, performance)
    details = {**details, "promotion": intent.as_dict()}
    promoted = {**details, "previous_champion": intent.expected_champion}
    events = [
        ("retrain.succeeded", f"retrain job {job.id} trained version {version}", details),
        ("model.promoted", f"version {version} promoted to champion: {how}", promoted),
    ]
    return try_end_job(engine, job, status="succeeded", settings=settings, version=version, details=details,
                       events=events, expected=("promoting",), stale_before=stale_before)  # fmt: skip


def put_back(
    engine: sa.Engine, job: RetrainJob, intent: Intent, *, settings: Settings, registry: Registry
) -> None:
    """The worker moved `champion` to the challenger after recovery had ended its job as not promoted
    (SQLite: a worker stalled past its champion lease and its heartbeat): move the aliases back to what
    the record says, `champion` first (a crash between the two leaves the old champion serving)."""
    from retrain.registry import CHAMPION, PREVIOUS_CHAMPION

    name = job.model_name
    with champion_lease(engine, name, seconds=settings.lease_seconds, wait=LEASE_WAIT_SECONDS) as held:
        champion = registry.champion(name) if held else None
        if champion is None or champion.version != intent.challenger:
            return  # not held, or not this job's move (any more): nothing of ours to undo
        registry.set_alias(name, CHAMPION, intent.expected_champion)
        if intent.previous_champion is None:
            registry.delete_alias(name, PREVIOUS_CHAMPION)
        else:
            registry.set_alias(name, PREVIOUS_CHAMPION, intent.previous_champion)
    log.error("retrain job %s moved the champion after recovery had ended it; version %s put back",
              job.id, intent.expected_champion)  # fmt: skip


def settle(
    engine: sa.Engine,
    job: RetrainJob,
    intent: Intent,
    *,
    settings: Settings,
    registry: Registry,
    cause: str,
    stale_before: datetime | None = None,
) -> RetrainJob | None:
    """End a `promoting` job by what MLflow's aliases say (module docstring); None when this call did not
    end it (the lease was taken: a later try; or it had ended). Registry errors propagate, nothing ended.
    Recovery passes `stale_before`, so a job whose worker beat meanwhile is left to that worker."""
    from retrain.registry import PREVIOUS_CHAMPION

    name = job.model_name
    with champion_lease(engine, name, seconds=settings.lease_seconds, wait=LEASE_WAIT_SECONDS) as held:
        if not held:
            return None
        champion = registry.champion(name)
        found = champion.version if champion else None
        previous = registry.get_alias(name, PREVIOUS_CHAMPION)
        if champion is not None and found == intent.challenger:
            if previous is None or previous.version != intent.expected_champion:
                registry.set_alias(name, PREVIOUS_CHAMPION, intent.expected_champion)
            metrics = registry.run_metrics(champion.run_id) if champion.run_id else {}
            details = {"reason": f"{cause}; recovery found the challenger serving as champion"}
            return record_promoted(
                engine, job, intent, settings=settings, registry=registry, details=details,
                performance=performance_from_metrics(metrics) or None, how=f"recorded by recovery ({cause})",
                stale_before=stale_before,
            )  # fmt: skip
        if found == intent.expected_champion:
            text = f"champion unchanged (version {found})"
            if previous is not None and previous.version == found and intent.previous_champion != found:
                # the crash fell between the two moves: put back the pointer before
                if intent.previous_champion is None:
                    registry.delete_alias(name, PREVIOUS_CHAMPION)
                else:
                    registry.set_alias(name, PREVIOUS_CHAMPION, intent.previous_champion)
        else:
            text = f"the champion is version {found or 'none'} (expected {intent.expected_champion})"
        reason = f"{cause}; challenger version {intent.challenger} was not promoted, {text}"
        assert job.id is not None
        orphaned = tag_orphans(registry, name, job.id, reason=reason)
        data = {"error": reason[:2000], "challenger": intent.challenger, "orphaned_versions": orphaned}
        return try_end_job(
            engine, job, status="failed", settings=settings, error=reason[:4000], version=intent.challenger,
            details={"promotion": intent.as_dict(), "orphaned_versions": orphaned}, expected=("promoting",),
            stale_before=stale_before,
            events=[("retrain.failed", f"retrain job {job.id} failed: {reason[:300]}", data)],
        )  # fmt: skip
