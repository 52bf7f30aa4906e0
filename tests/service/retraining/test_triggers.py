"""Retrain triggers (service/retraining/triggers.py), SQLite and PostgreSQL: estimated-performance episodes
retrain only by opt-in and once the traffic since the breach has labels; cooldown, budget and single flight
hold for overlapping triggers."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.codec import dumps
from service.db.engine import make_engine
from service.db.tables import DriftRun, Episode, Feedback, RetrainJob, utcnow
from service.retraining import triggers
from service.serving import store as repository
from tests.support.monitor import settings, unique_model


def _estimated_episode(engine: sa.Engine, model: str, kind: str = "estimated_performance") -> int:
    now = utcnow()
    with Session(engine) as session:
        run = DriftRun(
            window_key=f"{kind}:{model}:1", kind=kind, model_name=model,
            model_version="1", window_start=now, window_end=now, n_rows=500, status="drift", is_breach=True,
            summary="{}", started_at=now, finished_at=now,
        )  # fmt: skip
        session.add(run)
        session.flush()
        assert run.id is not None
        episode = Episode(model_name=model, kind=kind, status="open", opened_at=now,
                          first_run_id=run.id, last_run_id=run.id)  # fmt: skip
        session.add(episode)
        session.commit()
        assert episode.id is not None
        return episode.id


def _labeled(engine: sa.Engine, model: str, n: int) -> None:
    """`n` predictions served after the breach, each with its label."""
    start = utcnow() + timedelta(seconds=1)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "created_at": start + timedelta(seconds=i),
            "model_name": model,
            "model_version": "1",
            "features": "{}",
            "output": "0",
            "probabilities": None,
            "latency_ms": 1.0,
            "endpoint": "predict",
        }  # fmt: skip
        for i in range(n)
    ]
    with engine.begin() as conn:
        repository.insert_predictions(conn, rows=rows)
        conn.execute(
            sa.insert(Feedback.__table__),  # type: ignore[attr-defined]
            [{"prediction_id": r["id"], "label": dumps(0), "received_at": r["created_at"]} for r in rows],
        )


def test_estimated_episode_retrains_only_when_enabled_and_labels_exist(database_url: str) -> None:
    engine = make_engine(database_url)
    model = unique_model()
    episode = _estimated_episode(engine, model)
    off = settings(database_url, model, retrain_min_rows=50, retrain_cooldown_seconds=0)
    on = off.model_copy(update={"retrain_on_estimated": True})
    assert triggers.trigger_for_open_episodes(engine, off) == []  # the default: an early warning only
    _labeled(engine, model, 49)
    assert triggers.trigger_for_open_episodes(engine, on) == []  # one label short
    with Session(engine) as session:
        ep = session.get(Episode, episode)
        assert ep is not None
        assert (
            triggers.waiting_for_labels(session, ep, on)
            == "waiting for labels of the drifted traffic (49 of 50)"
        )
    assert triggers.trigger_for_open_episodes(engine, off) == []
    _labeled(engine, model, 1)
    assert triggers.trigger_for_open_episodes(engine, off) == []
    (job,) = triggers.trigger_for_open_episodes(engine, on)
    assert job.episode_id == episode and job.reason == f"estimated_performance episode {episode} breached"
    engine.dispose()


@pytest.mark.parametrize("limit", ["cooldown", "budget"])
def test_overlapping_triggers_queue_one_job_within_cooldown_and_budget(database_url: str, limit: str) -> None:
    """Trigger A has checked cooldown and budget and not yet queued; trigger B (another process) runs
    meanwhile, and its job is run and finished at once. Decided outside A's queueing transaction, A would
    then queue a second job for the episode inside the cooldown (or over the budget of one)."""
    model = unique_model()
    engines = [make_engine(database_url), make_engine(database_url)]
    _estimated_episode(engines[0], model, kind="performance")  # a performance episode: no label wait
    limits = {"retrain_cooldown_seconds": 3600} if limit == "cooldown" else {"retrain_daily_budget": 1}
    s = settings(database_url, model, **{"retrain_cooldown_seconds": 0, **limits})
    checked, go, b_done = threading.Event(), threading.Event(), threading.Event()
    real = triggers.automatic_allowed
    results: dict[str, list[RetrainJob]] = {}
    errors: list[BaseException] = []

    def allowed(*args: Any, **kwargs: Any) -> str | None:
        answer = real(*args, **kwargs)
        if not checked.is_set():  # trigger A, once: its decision is made, its job not yet queued
            checked.set()
            go.wait(3.0)
        return answer

    def trigger(who: str, engine: sa.Engine) -> None:
        try:
            results[who] = triggers.trigger_for_open_episodes(engine, s)
            with engine.begin() as conn:  # a worker runs and finishes the job at once
                conn.execute(
                    sa.update(RetrainJob)
                    .where(col(RetrainJob.id).in_([j.id for j in results[who]]))
                    .values(status="succeeded", active_key=None, finished_at=utcnow())
                )
        except BaseException as exc:  # surfaced by the assertions below
            errors.append(exc)
        finally:
            if who == "b":
                b_done.set()

    mp = pytest.MonkeyPatch()
    mp.setattr(triggers, "automatic_allowed", allowed)
    try:
        a = threading.Thread(target=trigger, args=("a", engines[0]))
        a.start()
        assert checked.wait(30)
        b = threading.Thread(target=trigger, args=("b", engines[1]))
        b.start()
        b_done.wait(1.0)  # decided in A's transaction, B waits for A to commit instead
        go.set()
        a.join(60)
        b.join(60)
    finally:
        mp.undo()
    assert not errors, errors
    with Session(engines[0]) as session:
        jobs = session.exec(select(RetrainJob.id).where(RetrainJob.model_name == model)).all()
    assert len(jobs) == 1, f"{len(jobs)} jobs queued for one episode ({limit})"
    assert sorted(len(r) for r in results.values()) == [0, 1]
    for engine in engines:
        engine.dispose()
