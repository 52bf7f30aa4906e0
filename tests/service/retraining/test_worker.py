from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from retrain.bootstrap import bootstrap_demo
from retrain.registry import Registry
from retrain.synthetic import FEATURES, TARGET, DriftPlan, generate
from service.codec import dumps
from service.config import Settings
from service.db.engine import make_engine
from service.db.tables import Episode, Event, RetrainJob, utcnow
from service.retraining import triggers as retrain_triggers
from service.retraining import worker as jobs
from service.retraining.submit import submit
from service.serving import store as repository

NAME = "jobs-demo"


def settings_for(url: str, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "database_url": url,
        "model_name": NAME,
        "retrain_min_rows": 200,
        "retrain_cooldown_seconds": 0,
    }
    return Settings(**{**base, **overrides})  # type: ignore[arg-type]


def log_labeled(
    engine: sa.Engine,
    n: int,
    *,
    drift: DriftPlan | None = None,
    version: str = "1",
    start: datetime | None = None,
    labeled: int | None = None,
) -> None:
    """Log `n` predictions one second apart, ending now (or from `start`); the first `labeled` (default
    all) get their true labels."""
    df = generate(n, seed=5, drift=drift)
    start = start or utcnow() - timedelta(seconds=n)
    rows, labels = [], []
    for i, record in enumerate(df[list(FEATURES)].to_dict(orient="records")):
        pid = str(uuid.uuid4())
        rows.append(
            {
                "id": pid,
                "created_at": start + timedelta(seconds=i),
                "model_name": NAME,
                "model_version": version,
                "features": dumps(record),
                "output": "0",
                "probabilities": None,
                "latency_ms": 1.0,
                "endpoint": "predict",
            }
        )
        labels.append((pid, int(df[TARGET].iloc[i])))
    with engine.begin() as conn:
        repository.insert_predictions(conn, rows=rows)
    with Session(engine) as session:
        repository.record_feedback(session, items=labels[:labeled])
        session.commit()


def events_of(engine: sa.Engine) -> list[str]:
    with Session(engine) as session:
        return [e.type for e in session.exec(select(Event).order_by(Event.created_at)).all()]


def test_concurrent_triggers_make_one_job(database_url: str) -> None:
    engine = make_engine(database_url)
    name = f"single-flight-{utcnow().timestamp()}"
    with ThreadPoolExecutor(20) as pool:
        results = list(
            pool.map(lambda i: submit(engine, model_name=name, trigger="manual", reason=f"r{i}"), range(20))
        )
    assert sum(r.created for r in results) == 1
    assert len({r.job.id for r in results}) == 1
    with Session(engine) as session:
        assert len(session.exec(select(RetrainJob).where(RetrainJob.model_name == name)).all()) == 1


def test_concept_drift_retrain_promotes_a_better_model(sqlite_url: str, registry: Registry) -> None:
    engine = make_engine(sqlite_url)
    bootstrap_demo(registry, NAME, n_rows=2000)
    log_labeled(engine, 1500, drift=DriftPlan(concept_at=0))
    settings = settings_for(sqlite_url)
    queued = submit(engine, model_name=NAME, trigger="manual", reason="labels show decay").job
    done = jobs.run_next(engine, settings=settings, registry=registry)
    assert done is not None and done.id == queued.id
    assert done.status == "succeeded", done.error
    assert done.result_version == "2" and done.champion_version == "1" and done.active_key is None
    details = orjson.loads(done.details)
    assert details["challenger_score"] > details["champion_score"] + 0.1
    champion = registry.champion(NAME)
    assert champion is not None and champion.version == "2"
    previous = registry.get_alias(NAME, "previous_champion")
    assert previous is not None and previous.version == "1"
    assert registry.get_version(NAME, "2").tags["job_id"] == str(done.id)
    assert events_of(engine)[-3:] == ["retrain.started", "retrain.succeeded", "model.promoted"]
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT model_version FROM reference_profiles")).scalars().all()
    assert "2" in stored


def test_worse_challenger_is_rejected_and_champion_kept(sqlite_url: str, registry: Registry) -> None:
    engine = make_engine(sqlite_url)
    bootstrap_demo(registry, NAME, n_rows=4000)
    log_labeled(engine, 400)  # no drift: a small refit cannot beat a well-trained champion by the margin
    settings = settings_for(sqlite_url, retrain_margin=0.05)
    submit(engine, model_name=NAME, trigger="manual", reason="check")
    done = jobs.run_next(engine, settings=settings, registry=registry)
    assert done is not None and done.status == "rejected"
    assert registry.champion(NAME).version == "1"  # type: ignore[union-attr]
    assert registry.get_version(NAME, done.result_version or "").tags["validation_status"] == "rejected"
    assert events_of(engine)[-1] == "model.rejected"


def test_too_little_data_fails_clearly(sqlite_url: str, registry: Registry) -> None:
    engine = make_engine(sqlite_url)
    bootstrap_demo(registry, NAME, n_rows=1000)
    log_labeled(engine, 50)
    submit(engine, model_name=NAME, trigger="manual", reason="too early")
    done = jobs.run_next(engine, settings=settings_for(sqlite_url), registry=registry)
    assert done is not None and done.status == "failed"
    assert "50 labeled rows" in (done.error or "")
    assert registry.champion(NAME).version == "1"  # type: ignore[union-attr]
    assert events_of(engine)[-1] == "retrain.failed"
    # the model is free for the next job
    assert submit(engine, model_name=NAME, trigger="manual", reason="again").created


def test_unreachable_registry_fails_the_job(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    engine = make_engine(sqlite_url)
    down = Registry("http://127.0.0.1:9", artifact_location=None)
    submit(engine, model_name=NAME, trigger="manual", reason="mlflow down")
    done = jobs.run_next(engine, settings=settings_for(sqlite_url), registry=down)
    assert done is not None and done.status == "failed"
    assert "unreachable" in (done.error or "").lower() or "connect" in (done.error or "").lower()
    assert events_of(engine)[-1] == "retrain.failed"


def _breach_run(engine: sa.Engine, run_id: int, *, version: str = "1", at: datetime | None = None) -> None:
    now = at or utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO drift_runs (id, window_key, kind, trigger, model_name, model_version,"
                " window_start, window_end, n_rows, status, dataset_drift, drift_share, is_breach, summary,"
                " started_at, finished_at, duration_ms) VALUES (:id, :key, 'drift', 'schedule', :name,"
                " :version, :now, :now, 10, 'drift', true, 1.0, true, '{}', :now, :now, 1)"
            ),
            {"id": run_id, "key": f"k{run_id}", "name": NAME, "now": now, "version": version},
        )


def _episode(engine: sa.Engine, run_id: int, *, labeled_after: int = 200) -> int:
    """A drift episode opened now; `labeled_after` labeled predictions served since its breach."""
    now = utcnow()
    _breach_run(engine, run_id, at=now)
    with Session(engine) as session:
        ep = Episode(model_name=NAME, kind="drift", status="open", opened_at=now, first_run_id=run_id,
                     last_run_id=run_id)  # fmt: skip
        session.add(ep)
        session.commit()
        assert ep.id is not None
    if labeled_after:
        log_labeled(engine, labeled_after, start=now)
    return ep.id


def test_drift_episode_waits_for_labels_of_the_drifted_traffic(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    settings = settings_for(sqlite_url)  # retrain_min_rows=200
    log_labeled(engine, 500)  # plenty of labels, all from before the breach
    episode = _episode(engine, 1, labeled_after=0)
    log_labeled(engine, 300, start=utcnow(), labeled=199)  # served after it, one label short
    assert retrain_triggers.trigger_for_open_episodes(engine, settings) == []
    with Session(engine) as session:
        ep = session.get(Episode, episode)
        assert ep is not None
        assert retrain_triggers.waiting_for_labels(session, ep, settings) == (
            "waiting for labels of the drifted traffic (199 of 200)"
        )
    log_labeled(engine, 1, start=utcnow())
    (job,) = retrain_triggers.trigger_for_open_episodes(engine, settings)
    assert job.episode_id == episode


def test_performance_episode_does_not_wait_and_a_waiting_drift_one_does_not_block_it(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    settings = settings_for(sqlite_url)
    _episode(engine, 1, labeled_after=0)  # opened first, waits for labels
    _breach_run(engine, 2)
    with Session(engine) as session:
        performance = Episode(model_name=NAME, kind="performance", status="open", opened_at=utcnow(),
                              first_run_id=2, last_run_id=2)  # fmt: skip
        session.add(performance)
        session.commit()
        assert performance.id is not None
        performance_id = performance.id
    (job,) = retrain_triggers.trigger_for_open_episodes(engine, settings)
    assert job.episode_id == performance_id


def test_open_episode_triggers_once_within_cooldown_and_budget(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    first = _episode(engine, 1)
    settings = settings_for(sqlite_url, retrain_cooldown_seconds=3600)
    (job,) = retrain_triggers.trigger_for_open_episodes(engine, settings)
    assert job.episode_id == first and job.trigger == "episode" and job.drift_run_id == 1
    assert retrain_triggers.trigger_for_open_episodes(engine, settings) == []  # idempotent per episode
    with Session(
        engine
    ) as session:  # finish it and close the episode; a second one inside the cooldown waits
        row = session.get(RetrainJob, job.id)
        episode = session.get(Episode, first)
        assert row is not None and episode is not None
        row.status, row.active_key = "succeeded", None
        episode.status = "closed"
        session.add_all([row, episode])
        session.commit()
    _episode(engine, 2)
    assert retrain_triggers.trigger_for_open_episodes(engine, settings) == []
    no_cooldown = settings_for(sqlite_url, retrain_cooldown_seconds=0, retrain_daily_budget=1)
    assert (
        retrain_triggers.trigger_for_open_episodes(engine, no_cooldown) == []
    )  # budget of 1 already used today
    assert len(retrain_triggers.trigger_for_open_episodes(engine, settings_for(sqlite_url))) == 1


def test_stale_running_job_is_failed(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    job = submit(engine, model_name=NAME, trigger="manual", reason="x").job
    with Session(engine) as session:
        row = session.get(RetrainJob, job.id)
        assert row is not None
        row.status, row.started_at = "running", datetime.now(UTC) - timedelta(hours=2)
        session.add(row)
        session.commit()
    assert jobs.fail_stale(engine, settings=settings_for(sqlite_url), older_than_seconds=3600) == 1
    with Session(engine) as session:
        row = session.get(RetrainJob, job.id)
        assert row is not None and row.status == "failed" and row.active_key is None
        assert "worker stopped" in (row.error or "")


def _extend(engine: sa.Engine, episode_id: int, run_id: int, *, version: str) -> None:
    _breach_run(engine, run_id, version=version)
    with Session(engine) as session:
        episode = session.get(Episode, episode_id)
        assert episode is not None
        episode.last_run_id = run_id
        session.add(episode)
        session.commit()


def _finish(engine: sa.Engine, job_id: int | None, status: str, champion: str) -> None:
    with Session(engine) as session:
        row = session.get(RetrainJob, job_id)
        assert row is not None
        row.status, row.active_key, row.champion_version = status, None, champion
        row.finished_at = utcnow()
        session.add(row)
        session.commit()


def test_an_episode_that_keeps_breaching_after_a_rejected_retrain_gets_another(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    settings = settings_for(sqlite_url)
    episode = _episode(engine, 1)
    (first,) = retrain_triggers.trigger_for_open_episodes(engine, settings)
    _extend(engine, episode, 2, version="1")  # breaches while the job runs: answered by that job
    assert retrain_triggers.trigger_for_open_episodes(engine, settings) == []
    _finish(engine, first.id, "rejected", champion="1")
    assert retrain_triggers.trigger_for_open_episodes(engine, settings) == []  # nothing new since it finished
    _extend(engine, episode, 3, version="1")  # the champion is still breaking
    # the next retrain waits for labels of the traffic since that breach: older ones made the rejected one
    assert retrain_triggers.trigger_for_open_episodes(engine, settings) == []
    log_labeled(engine, 200, start=utcnow())
    (second,) = retrain_triggers.trigger_for_open_episodes(engine, settings)
    assert second.id != first.id and second.episode_id == episode
    _finish(engine, second.id, "succeeded", champion="1")
    _extend(engine, episode, 4, version="1")  # late window of the replaced version: no new retrain
    assert retrain_triggers.trigger_for_open_episodes(engine, settings) == []
    _extend(engine, episode, 5, version="2")  # the new champion breaches too
    log_labeled(engine, 200, start=utcnow(), version="2")
    assert len(retrain_triggers.trigger_for_open_episodes(engine, settings)) == 1
