"""A rollback sticks: it pauses the automatic loop until a person resumes it (or the hold time passes)."""

from __future__ import annotations

from datetime import timedelta

import orjson
import sqlalchemy as sa
from sqlmodel import Session

from retrain.registry import ModelVersionInfo, Registry
from service.db.engine import make_engine
from service.db.tables import DriftRun, Episode, utcnow
from service.monitor import automation
from service.retraining.rollback import rollback
from service.retraining.triggers import trigger_for_open_episodes
from tests.support.promotion import job_settings, log_labeled, seed_champion, unique


def open_performance_episode(engine: sa.Engine, name: str) -> None:
    """A breaching performance run of the champion (version 2) and the episode it opened."""
    now = utcnow()
    with Session(engine) as session, session.begin():
        run = DriftRun(
            window_key=f"performance:{name}:test", kind="performance", trigger="schedule", model_name=name,
            model_version="2", window_start=now - timedelta(minutes=5), window_end=now, n_rows=500,
            status="drift", is_breach=True, summary=orjson.dumps({"message": "degraded"}).decode(),
            started_at=now, finished_at=now,
        )  # fmt: skip
        session.add(run)
        session.flush()
        assert run.id is not None
        session.add(Episode(model_name=name, kind="performance", status="open", opened_at=now,
                            first_run_id=run.id, last_run_id=run.id))  # fmt: skip


def test_a_rollback_pauses_the_loop_until_a_person_resumes_it(
    database_url: str, server: Registry, template: ModelVersionInfo
) -> None:
    engine = make_engine(database_url)
    name = unique("automation")
    seed_champion(server, template, name)
    settings = job_settings(database_url, name)
    with Session(engine) as session:
        assert not automation.current(session, name, settings).paused  # no row: active

    rollback(engine, server, settings)
    with Session(engine) as session:
        state = automation.current(session, name, settings)
    assert state.paused and state.changed_by == "rollback" and state.resumes_at is None
    assert "rolled back from version 2 to 1" in state.reason

    log_labeled(engine, name, 300)
    open_performance_episode(engine, name)
    assert trigger_for_open_episodes(engine, settings) == []  # the person's choice holds

    with Session(engine) as session, session.begin():
        automation.set_state(session, name, "active", reason="checked the new data", by="admin")
    (job,) = trigger_for_open_episodes(engine, settings)
    assert job.trigger == "episode"


def test_the_hold_time_ends_a_rollback_pause_but_not_a_persons(database_url: str) -> None:
    engine = make_engine(database_url)
    name = unique("hold")
    settings = job_settings(database_url, name, automation_hold_seconds=60)
    with Session(engine) as session, session.begin():
        automation.set_state(session, name, "paused", reason="rolled back", by=automation.ROLLBACK)
    with Session(engine) as session:
        now = automation.current(session, name, settings)
        later = automation.current(session, name, settings, now=utcnow() + timedelta(seconds=61))
        assert automation.blocked(session, name, settings) is not None
    assert now.paused and now.resumes_at is not None
    assert not later.paused
    with Session(engine) as session, session.begin():
        automation.set_state(session, name, "paused", reason="holiday", by="admin")
    with Session(engine) as session:
        assert automation.current(session, name, settings, now=utcnow() + timedelta(days=9)).paused
