"""Retraining per model through the one scheduler's retrain-trigger job: each model's own settings, pause,
single flight and daily budget; SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.config import Settings
from service.db.engine import make_engine
from service.db.tables import RetrainJob
from service.monitor import automation
from service.monitor.sources import WatchedModels, registry_models
from service.retraining.submit import submit
from tests.support.core import FakeRegistry
from tests.support.monitor import settings, unique_model
from tests.support.retrain_triggers import jobs_of, open_performance_episode, trigger_job, trigger_tick


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


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
    job = trigger_job(by_name[a], models, engine)
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


def test_a_model_paused_in_the_models_file_gets_no_automatic_retrain_but_a_manual_one(
    engine: sa.Engine, database_url: str, tmp_path: Path, fake_registry: FakeRegistry
) -> None:
    paused, other = unique_model(), unique_model()
    path = tmp_path / "models.toml"
    path.write_text(f'[models."{paused}"]\nautomation_paused = true\n[models."{other}"]\nbreach_k = 1\n')
    s = settings(database_url, paused, models_file=str(path), retrain_cooldown_seconds=0)
    # the settings of `driftloop scheduler` (read from the models file); only these two models' triggers
    from_file = registry_models(s, engine, fake_registry)  # type: ignore[arg-type]
    models = WatchedModels(engine, names=lambda: [paused, other], settings_for=from_file.settings_for)
    episodes = {m: open_performance_episode(engine, m) for m in (paused, other)}
    job = trigger_job(s, models, engine)
    try:
        assert trigger_tick(job) == {paused: True, other: True}
        assert jobs_of(engine, [paused, other]) == {paused: [], other: [("queued", episodes[other])]}
        trigger_tick(job)  # the pause holds at every tick, not only the first
        assert jobs_of(engine, [paused]) == {paused: []}
    finally:
        job.close()
    with Session(engine) as session:
        why = automation.blocked(session, paused, from_file.settings_for(paused))
    assert why == f"automation paused by automation_paused = true in [models.{paused}] of {path}"

    # a manual retrain, queued as POST /v1/retrain does (through the app: test_automation_configured.py)
    manual = submit(engine, model_name=paused, trigger="manual", reason="a person asked")
    assert manual.created and manual.job.trigger == "manual"
    assert jobs_of(engine, [paused]) == {paused: [("queued", None)]}
