from __future__ import annotations

import itertools
from collections.abc import Iterator

import orjson
import pytest
import sqlalchemy as sa
from sklearn.pipeline import Pipeline
from sqlmodel import Session, col, select

from retrain.synthetic import DriftPlan
from service.db.engine import make_engine
from service.db.tables import DriftRun, Episode, Event
from service.monitor import ManualWindow, Monitor
from tests.support.monitor import add_reference, log_traffic, settings, unique_model

DRIFTED = {"income", "balance", "region"}


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def events_of(engine: sa.Engine, model: str) -> list[Event]:
    with Session(engine) as session:
        return list(
            session.exec(select(Event).where(Event.model_name == model).order_by(col(Event.created_at)))
        )


def episodes_of(engine: sa.Engine, model: str) -> list[Episode]:
    with Session(engine) as session:
        return list(session.exec(select(Episode).where(Episode.model_name == model)))


def test_covariate_drift_opens_one_episode_that_closes(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    model = unique_model()
    add_reference(engine, model)
    monitor = Monitor(settings(database_url, model), engine, champion_version=lambda _: "1")
    plan = DriftPlan(covariate_at=2000, covariate_until=4000)
    runs: list[DriftRun] = []
    for block in range(7):
        log_traffic(engine, demo_estimator, n_rows=1000, offset=block * 1000, drift=plan, model=model)
        new = monitor.run_due("drift")
        assert len(new) == 1, f"block {block}: {new}"
        runs.extend(new)
        if block == 3:  # two of the last three windows breached: the episode is open
            assert [e.status for e in episodes_of(engine, model)] == ["open"]

    summaries = [orjson.loads(r.summary) for r in runs]
    for i in (0, 1, 4, 5, 6):
        assert runs[i].status == "no_drift" and not runs[i].is_breach, summaries[i]["message"]
        assert summaries[i]["drifted_features"] == []
    for i in (2, 3):
        assert runs[i].is_breach and runs[i].status == "drift"
        assert set(summaries[i]["drifted_features"]) == DRIFTED
        assert summaries[i]["prediction_drift"] is True
    assert all(r.n_rows == 1000 and r.trigger == "schedule" for r in runs)

    (episode,) = episodes_of(engine, model)
    assert (episode.status, episode.first_run_id, episode.close_run_id) == ("closed", runs[2].id, runs[6].id)
    events = events_of(engine, model)
    assert [e.type for e in events] == ["drift.detected", "drift.resolved"]
    detected = orjson.loads(events[0].payload)
    assert {d["feature"] for d in detected["data"]["drifted"]} >= DRIFTED
    assert detected["data"]["rule"] == {"k": 2, "m": 3, "breaching": 2, "considered": 3}
    assert detected["links"]["run"].endswith(f"/v1/drift/runs/{runs[3].id}")
    assert detected["links"]["report"].endswith(f"/v1/drift/runs/{runs[3].id}/report.html")
    assert "income" in detected["summary"]


def test_same_window_is_stored_once(engine: sa.Engine, database_url: str, demo_estimator: Pipeline) -> None:
    model = unique_model()
    add_reference(engine, model)
    log_traffic(engine, demo_estimator, n_rows=1000, offset=0, model=model)
    monitor = Monitor(settings(database_url, model), engine, champion_version=lambda _: "1")
    (first,) = monitor.run_due("drift")
    assert monitor.run_due("drift") == []
    manual = monitor.check_now("drift", ManualWindow(last_n=500))
    again = monitor.check_now("drift", ManualWindow(last_n=500))
    assert manual.id == again.id and manual.trigger == "manual" and manual.n_rows == 500
    with Session(engine) as session:
        keys = session.exec(select(DriftRun.window_key).where(DriftRun.model_name == model)).all()
    assert len(keys) == len(set(keys)) == 2 and first.window_key in keys


def test_small_window_is_insufficient_data(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    model = unique_model()
    add_reference(engine, model)
    log_traffic(engine, demo_estimator, n_rows=50, offset=0, model=model)
    monitor = Monitor(settings(database_url, model), engine, champion_version=lambda _: "1")
    assert monitor.run_due("drift") == []  # no complete block of 1000 rows yet
    run = monitor.check_now("drift", ManualWindow(last_n=1000))
    assert (run.status, run.n_rows, run.is_breach) == ("insufficient_data", 50, False)
    assert "at least 200" in orjson.loads(run.summary)["message"]


def test_time_windows_are_fixed_buckets(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    model = unique_model()
    add_reference(engine, model)
    log_traffic(engine, demo_estimator, n_rows=300, offset=0, model=model)  # 2026-01-01 00:00..00:05
    s = settings(database_url, model, window_kind="time", window_seconds=3600.0, breach_m=2)
    monitor = Monitor(s, engine, champion_version=lambda _: "1")
    runs = monitor.run_due("drift")
    # every hour from the first row's on, oldest first, `window_checks_per_tick` (20) of them per tick
    assert (runs[0].status, runs[0].n_rows) == ("no_drift", 300)
    assert [r.status for r in runs[1:]] == ["insufficient_data"] * 19
    assert all((r.window_end - r.window_start).total_seconds() == 3600 for r in runs)
    assert all((b.window_start - a.window_start).total_seconds() == 3600 for a, b in itertools.pairwise(runs))
    assert monitor.run_due("drift")[0].window_start == runs[-1].window_end  # the next tick goes on
    hour = monitor.check_now(
        "drift", ManualWindow(start=runs[0].window_start.replace(year=2026, month=1, day=1, hour=0))
    )
    assert hour.n_rows == 300 and hour.status == "no_drift"


def test_missing_reference_is_reported_not_raised(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    model = unique_model()
    log_traffic(engine, demo_estimator, n_rows=1000, offset=0, model=model, version="3")
    monitor = Monitor(settings(database_url, model), engine, champion_version=lambda _: None)
    (run,) = monitor.run_due("drift")  # no champion known: the latest served version is checked
    assert (run.status, run.model_version, run.n_rows) == ("no_reference", "3", 1000)
    assert "no reference data" in orjson.loads(run.summary)["message"]
    assert episodes_of(engine, model) == []


def test_concept_drift_degrades_performance(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    model = unique_model()
    s = settings(database_url, model, performance_window_rows=400, performance_tolerance=0.05)
    monitor = Monitor(s, engine, champion_version=lambda _: "1")
    plan = DriftPlan(concept_at=800)
    runs: list[DriftRun] = []
    for block in range(4):
        log_traffic(
            engine, demo_estimator, n_rows=400, offset=block * 400, drift=plan, model=model, labeled=True
        )
        runs.extend(monitor.run_due("performance"))
    summaries = [orjson.loads(r.summary) for r in runs]
    assert summaries[0]["baseline"] is True and summaries[0]["metric"] == "accuracy"
    assert not runs[1].is_breach
    assert runs[2].is_breach and runs[3].is_breach
    assert summaries[2]["evidence"]["value"] < summaries[0]["metrics"]["accuracy"] - 0.05
    assert summaries[2]["evidence"]["test"] == "fisher_exact" and summaries[2]["evidence"]["p_val"] < 0.01
    assert "degraded" in summaries[2]["message"]
    assert [e.type for e in events_of(engine, model)] == ["performance.degraded"]
    (episode,) = episodes_of(engine, model)
    assert (episode.kind, episode.status) == ("performance", "open")
