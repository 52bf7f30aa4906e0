"""Helpers of the retrain-trigger tests: a breaching episode per model, the scheduler's trigger job, and
the jobs it queued."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service import scheduler as sched
from service.config import Settings
from service.db.tables import DriftRun, Episode, RetrainJob, utcnow
from service.monitor.sources import WatchedModels


def open_performance_episode(
    engine: sa.Engine, model: str, *, version: str = "1", summary: str = "{}", window: str = "1"
) -> int:
    """A breaching performance run of the model's `version` and the open episode it started; its id."""
    now = utcnow()
    with Session(engine) as session:
        run = DriftRun(
            window_key=f"performance:{model}:{window}", kind="performance", model_name=model,
            model_version=version, window_start=now, window_end=now, n_rows=500, status="drift",
            is_breach=True, summary=summary, started_at=now, finished_at=now,
        )  # fmt: skip
        session.add(run)
        session.flush()
        assert run.id is not None
        episode = Episode(model_name=model, kind="performance", status="open", opened_at=now,
                          first_run_id=run.id, last_run_id=run.id)  # fmt: skip
        session.add(episode)
        session.commit()
        assert episode.id is not None
        return episode.id


def jobs_of(engine: sa.Engine, models: list[str]) -> dict[str, list[tuple[str, int | None]]]:
    """Each model's retrain jobs in order, as (status, episode id)."""
    with Session(engine) as session:
        rows = session.exec(
            select(RetrainJob).where(col(RetrainJob.model_name).in_(models)).order_by(col(RetrainJob.id))
        ).all()
    out: dict[str, list[tuple[str, int | None]]] = {m: [] for m in models}
    for row in rows:
        out[row.model_name].append((row.status, row.episode_id))
    return out


def trigger_job(settings: Settings, models: WatchedModels, engine: sa.Engine) -> sched.PerModelJob:
    """The scheduler's retrain-trigger job over `models` (close it when done)."""
    (spec,) = [j for j in sched.background_jobs(settings, models, None) if j.name == "retrain-trigger"]
    return sched.PerModelJob(spec, settings, engine, "test-holder")


def trigger_tick(job: sched.PerModelJob) -> dict[str, bool]:
    """One tick, waited out: whether each model's trigger ran."""
    return {m: f.result(timeout=60) for m, f in job.tick().items()}
