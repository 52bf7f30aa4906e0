"""Retraining per model through the one scheduler's retrain-trigger job: each model's own settings, pause,
single flight and daily budget; SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from service import scheduler as sched
from service.config import Settings
from service.db.engine import make_engine
from service.db.tables import DriftRun, Episode, RetrainJob, utcnow
from service.monitor import automation
from service.monitor.sources import WatchedModels
from tests.support.monitor import settings, unique_model


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def open_performance_episode(engine: sa.Engine, model: str) -> int:
    now = utcnow()
    with Session(engine) as session:
        run = DriftRun(
            window_key=f"performance:{model}:1", kind="performance", model_name=model, model_version="1",
            window_start=now, window_end=now, n_rows=500, status="drift", is_breach=True, summary="{}",
            started_at=now, finished_at=now,
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
    with Session(engine) as session:
        rows = session.exec(
            select(RetrainJob).where(col(RetrainJob.model_name).in_(models)).order_by(col(RetrainJob.id))
        ).all()
    out: dict[str, list[tuple[str, int | None]]] = {m: [] for m in models}
    for row in rows:
        out[row.model_name].append((row.status, row.episode_id))
    return out


def trigger_tick(job: sched.PerModelJob) -> dict[str, bool]:
    return {m: f.result(timeout=60) for m, f in job.tick().items()}


def test_each_model_is_retrained_on_its_own_episode_under_its_own_settings(
    engine: sa.Engine, database_url: str
) -> None:
    a, paused, off = unique_model(), unique_model(), unique_model()
    by_name: dict[str, Settings] = {
        a: settings(database_url, a, retrain_cooldown_seconds=0, retrain_daily_budget=1),
        paused: settings(database_url, paused, retrain_cooldown_seconds=0, retrain_daily_budget=1),
        off: settings(database_url, off, retrain_on_episode=False),  # watched only, never retrained
    }
    episodes = {m: open_performance_episode(engine, m) for m in by_name}
    with Session(engine) as session:
        automation.set_state(session, paused, "paused", reason="audit", by="admin")
        session.commit()
    models = WatchedModels(engine, names=lambda: list(by_name), settings_for=by_name.__getitem__)
    (spec,) = [j for j in sched.background_jobs(by_name[a], models, None) if j.name == "retrain-trigger"]
    job = sched.PerModelJob(spec, by_name[a], engine, "test-holder")
    try:
        assert trigger_tick(job) == {a: True, paused: True, off: True}
        assert jobs_of(engine, list(by_name)) == {a: [("queued", episodes[a])], paused: [], off: []}

        assert trigger_tick(job)  # single flight: a's queued job answers its episode, nothing new
        assert jobs_of(engine, [a]) == {a: [("queued", episodes[a])]}

        with Session(engine) as session:  # resumed: its own budget of one is unused by a's job
            automation.set_state(session, paused, "active", reason="audited", by="admin")
            session.commit()
        trigger_tick(job)
        assert jobs_of(engine, list(by_name)) == {
            a: [("queued", episodes[a])],
            paused: [("queued", episodes[paused])],
            off: [],
        }
    finally:
        job.close()
    with Session(engine) as session:
        assert {j.model_name: j.active_key for j in session.exec(
            select(RetrainJob).where(col(RetrainJob.model_name).in_([a, paused]))
        )} == {a: a, paused: paused}  # fmt: skip
