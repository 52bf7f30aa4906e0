"""Estimated-performance episodes and retraining (service/retraining/triggers.py): opt-in, and only once
the traffic since the breach has labels; SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session

from service.codec import dumps
from service.db.engine import make_engine
from service.db.tables import DriftRun, Episode, Feedback, utcnow
from service.retraining import triggers
from service.serving import store as repository
from tests.support.monitor import settings, unique_model


def _estimated_episode(engine: sa.Engine, model: str) -> int:
    now = utcnow()
    with Session(engine) as session:
        run = DriftRun(
            window_key=f"estimated_performance:{model}:1", kind="estimated_performance", model_name=model,
            model_version="1", window_start=now, window_end=now, n_rows=500, status="drift", is_breach=True,
            summary="{}", started_at=now, finished_at=now,
        )  # fmt: skip
        session.add(run)
        session.flush()
        assert run.id is not None
        episode = Episode(model_name=model, kind="estimated_performance", status="open", opened_at=now,
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
