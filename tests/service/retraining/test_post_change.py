"""A retrain after a change learns from the change on, and its job records the paired gate
(real `mlflow server`, SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import orjson
import sqlalchemy as sa
from sqlmodel import Session

from retrain.registry import ModelVersionInfo, Registry
from retrain.synthetic import FEATURES, TARGET, DriftPlan, generate
from service.codec import dumps
from service.db.engine import make_engine
from service.db.tables import utcnow
from service.monitor.references import get_reference
from service.retraining import worker
from service.retraining.submit import submit
from service.retraining.triggers import trigger_for_open_episodes
from service.serving import store as repository
from tests.support.promotion import job_settings, seed_champion, unique
from tests.support.retrain_triggers import open_performance_episode


def log_stream(engine: sa.Engine, name: str, n: int, concept_at: int) -> list:  # type: ignore[type-arg]
    """`n` labeled predictions one second apart ending now; the concept flips at row `concept_at`.
    Returns the prediction times."""
    df = generate(n, seed=9, drift=DriftPlan(concept_at=concept_at))
    start = utcnow() - timedelta(seconds=n)
    rows, labels, times = [], [], []
    for i, record in enumerate(df[list(FEATURES)].to_dict(orient="records")):
        pid, at = str(uuid.uuid4()), start + timedelta(seconds=i)
        rows.append({"id": pid, "created_at": at, "model_name": name, "model_version": "2",
                     "features": dumps(record), "output": "0", "probabilities": None, "latency_ms": 1.0,
                     "endpoint": "predict"})  # fmt: skip
        labels.append((pid, int(df[TARGET].iloc[i])))
        times.append(at)
    with engine.begin() as conn:
        repository.insert_predictions(conn, rows=rows)
    with Session(engine) as session:
        repository.record_feedback(session, items=labels)
        session.commit()
    return times


def open_episode_at(engine: sa.Engine, name: str, predicted_from: datetime) -> int:
    summary = dumps({"message": "degraded", "predicted_from": predicted_from.isoformat()})
    return open_performance_episode(engine, name, version="2", summary=summary, window="change")


def test_the_challenger_trains_on_rows_from_the_change_on(
    database_url: str, server: Registry, template: ModelVersionInfo
) -> None:
    engine = make_engine(database_url)
    name = unique("postchange")
    seed_champion(server, template, name)
    times = log_stream(engine, name, 1400, concept_at=600)
    episode_id = open_episode_at(engine, name, times[600])
    settings = job_settings(database_url, name)
    (queued,) = trigger_for_open_episodes(engine, settings)
    assert queued.episode_id == episode_id
    done = worker.run_next(engine, settings=settings, registry=server)
    assert done is not None and done.status in ("succeeded", "rejected"), done.error
    details = orjson.loads(done.details)
    assert details["post_change"] is True
    assert details["n_train"] + details["n_holdout"] == 800  # the 800 rows since the change, not 1400
    assert "since the change" in details["data_reason"]
    assert details["change_at"].startswith(times[600].isoformat()[:19])
    # the paired gate, both scores and the p-value are on the record
    assert details["test"] == "mcnemar_exact" and 0.0 <= details["p_val"] <= 1.0
    assert {"champion_score", "challenger_score"} <= details.keys()
    assert details["paired"]["champion_score"] == details["champion_score"]
    if done.status == "succeeded":  # the promoted challenger's holdout baseline goes with its reference
        assert (
            details["baseline"]["metric"] == "accuracy" and details["baseline"]["n"] == details["n_holdout"]
        )
        with Session(engine) as session:
            row = get_reference(session, model_name=name, model_version=str(done.result_version))
        assert row is not None and row.baseline is not None
        assert orjson.loads(row.baseline) == details["baseline"]  # the new champion's checks test against it


def test_a_tie_is_rejected_and_says_why(
    database_url: str, server: Registry, template: ModelVersionInfo
) -> None:
    engine = make_engine(database_url)
    name = unique("tie")
    seed_champion(server, template, name)
    log_stream(engine, name, 400, concept_at=10_000)
    settings = job_settings(database_url, name, retrain_recipe="tests.support.recipes:same_as_champion")
    submit(engine, model_name=name, trigger="manual", reason="tie")
    done = worker.run_next(engine, settings=settings, registry=server)
    assert done is not None and done.status == "rejected", done.error
    details = orjson.loads(done.details)
    assert details["champion_score"] == details["challenger_score"]
    assert details["p_val"] == 1.0 and details["paired"]["passed"] is False
    assert details["post_change"] is False and details["change_at"] is None
