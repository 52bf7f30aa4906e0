"""Estimated performance runs (monitor/estimated.py) and drift root cause in stored runs, on SQLite and
PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import orjson
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sqlmodel import Session, col, select

from detectors.estimated import CBPE_LIMITS, DLE_LIMITS
from retrain.synthetic import FEATURES, TARGET, generate
from service.codec import dumps
from service.db.engine import make_engine
from service.db.tables import DriftRun, Episode, Event, ReferenceEstimator
from service.monitor import Monitor
from service.monitor.references import store_reference
from service.serving import store as repository
from tests.support.estimation import EstimatorSource, boundary_rows, ignoring, log_rows
from tests.support.monitor import T0, add_reference, settings, unique_model

WINDOW = 500
KIND = "estimated_performance"


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def runs_of(engine: sa.Engine, model: str, kind: str) -> list[DriftRun]:
    with Session(engine) as session:
        stmt = select(DriftRun).where(DriftRun.model_name == model, DriftRun.kind == kind)
        return list(session.exec(stmt.order_by(col(DriftRun.window_end), col(DriftRun.id))))


def events_of(engine: sa.Engine, model: str) -> list[Event]:
    with Session(engine) as session:
        stmt = select(Event).where(Event.model_name == model).order_by(col(Event.created_at))
        return list(session.exec(stmt))


def test_estimated_runs_breach_on_a_covariate_shift_and_carry_the_limits(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    model = unique_model()
    add_reference(engine, model)
    source = EstimatorSource(demo_estimator, generate(2000, seed=5))
    s = settings(database_url, model, window_rows=WINDOW)
    monitor = Monitor(s, engine, champion_version=lambda _: "1", references=source)
    clean = generate(WINDOW * 6, seed=11)
    shifted = boundary_rows(demo_estimator, WINDOW * 3, seed=12)
    blocks = [clean[:WINDOW], clean[WINDOW : 2 * WINDOW]]
    blocks += [shifted[i * WINDOW : (i + 1) * WINDOW] for i in range(3)]
    blocks += [clean[(2 + i) * WINDOW : (3 + i) * WINDOW] for i in range(4)]
    for i, block in enumerate(blocks):
        log_rows(engine, demo_estimator, block, offset=i * WINDOW, name=model)
        assert len(monitor.run_due("drift")) == 1

    runs = runs_of(engine, model, KIND)
    assert len(runs) == len(blocks)
    summaries = [orjson.loads(r.summary) for r in runs]
    assert all(x["limits"] == CBPE_LIMITS and x["method"] == "cbpe" for x in summaries)
    assert [r.is_breach for r in runs] == [False, False, True, True, True, False, False, False, False]
    realized = [float((demo_estimator.predict(b[list(FEATURES)]) == b[TARGET]).mean()) for b in blocks]
    for x, truth in zip(summaries, realized, strict=True):
        acc = next(m for m in x["estimate"]["metrics"] if m["metric"] == "accuracy")
        assert abs(acc["value"] - truth) < 0.06, (acc, truth)  # the estimate follows the realized accuracy
        assert acc["lower"] <= acc["value"] <= acc["upper"]
    assert summaries[2]["breach"]["effect"] >= 0.02 and summaries[2]["breach"]["p_val"] < 0.01
    assert summaries[0]["holdout_source"] == "registry:holdout/holdout.parquet"
    assert summaries[0]["n_holdout"] == 2000

    with Session(engine) as session:
        (episode,) = session.exec(select(Episode).where(Episode.model_name == model, Episode.kind == KIND))
        (fitted,) = session.exec(select(ReferenceEstimator).where(ReferenceEstimator.model_name == model))
    assert (episode.status, episode.first_run_id, episode.close_run_id) == ("closed", runs[2].id, runs[7].id)
    assert fitted.n_holdout == 2000
    assert source.loads == 1  # fitted once, at the first check, then read from the database
    types = [e.type for e in events_of(engine, model) if e.type.startswith("performance.estimated")]
    assert types == ["performance.estimated_degraded", "performance.estimated_recovered"]
    degraded = orjson.loads(next(e for e in events_of(engine, model) if e.type == types[0]).payload)
    assert degraded["data"]["limits"] == CBPE_LIMITS and degraded["data"]["metric"] == "accuracy"
    assert "no labels yet" in degraded["summary"]


def test_without_a_holdout_the_labeled_reference_sample_is_used(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    model = unique_model()
    add_reference(engine, model)
    monitor = Monitor(
        settings(database_url, model, window_rows=WINDOW), engine, champion_version=lambda _: "1",
        references=EstimatorSource(demo_estimator, None),
    )  # fmt: skip
    log_rows(engine, demo_estimator, generate(WINDOW, seed=11), offset=0, name=model)
    monitor.run_due("drift")
    (run,) = runs_of(engine, model, KIND)
    summary = orjson.loads(run.summary)
    assert summary["holdout_source"].startswith("reference_sample")
    assert summary["n_holdout"] == 1600  # 40% of the 4000 reference rows
    assert run.status == "no_drift"


def test_no_estimator_source_means_no_estimated_run(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    model = unique_model()
    add_reference(engine, model)
    monitor = Monitor(
        settings(database_url, model, window_rows=WINDOW), engine, champion_version=lambda _: "1"
    )
    log_rows(engine, demo_estimator, generate(WINDOW, seed=11), offset=0, name=model)
    (drift_run,) = monitor.run_due("drift")
    assert runs_of(engine, model, KIND) == []
    assert orjson.loads(drift_run.summary)["root_cause"] is None


def test_root_cause_ranks_the_drifted_feature_the_model_ignores_last(
    engine: sa.Engine, database_url: str
) -> None:
    model = unique_model()
    add_reference(engine, model)
    blind = ignoring("age")
    source = EstimatorSource(blind, generate(2000, seed=5))
    monitor = Monitor(
        settings(database_url, model, window_rows=WINDOW), engine, champion_version=lambda _: "1",
        references=source,
    )  # fmt: skip
    runs = []
    for i in range(3):
        block = generate(WINDOW, seed=20 + i)
        block["age"] = block["age"] + 25.0  # drifts, and the model never looks at it
        block["income"] = block["income"] * 2.0  # drifts, and the model leans on it
        log_rows(engine, blind, block, offset=i * WINDOW, name=model)
        runs += monitor.run_due("drift")
    summary = orjson.loads(runs[-1].summary)
    cause = summary["root_cause"]
    drifted = [c["feature"] for c in cause["causes"] if c["is_drift"]]
    assert {"age", "income"} <= set(drifted)
    assert drifted[-1] == "age" and drifted[0] == "income", cause["causes"]
    age = next(c for c in cause["causes"] if c["feature"] == "age")
    assert age["share"] == 0.0 and age["score"] == 0.0
    assert cause["top"][0] == "income"
    assert cause["sentence"].startswith("The drift that matters to this model: income")
    assert "barely used by the model: " in cause["sentence"] and "age" in cause["sentence"].split("barely")[1]
    assert summary["message"].startswith("The drift that matters to this model: income")
    (opened,) = [e for e in events_of(engine, model) if e.type == "drift.detected"]
    payload = orjson.loads(opened.payload)
    assert payload["summary"].startswith("The drift that matters to this model: income")
    assert next(iter(payload["data"])) == "root_cause"
    opening = next(r for r in runs if r.id == payload["data"]["run_id"])
    assert payload["data"]["root_cause"] == orjson.loads(opening.summary)["root_cause"]["sentence"]
    assert payload["data"]["root_cause_ranking"]["top"][0] == "income"


def test_a_numeric_regressor_gets_dle_estimates(engine: sa.Engine, database_url: str) -> None:
    rng = np.random.default_rng(0)

    def frame(n: int, spread: float) -> pd.DataFrame:
        X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(0.0, spread, size=n)})
        return X.assign(y=X["a"] + rng.normal(size=n) * (0.2 + np.abs(X["b"])))  # noisier for large |b|

    train = frame(3000, 1.0)
    regressor = LinearRegression().fit(train[["a", "b"]], train["y"])
    model = unique_model()
    store_reference(engine, model_name=model, model_version="1", data=train, features=["a", "b"], target="y",
                    source="test")  # fmt: skip
    source = EstimatorSource(regressor, frame(2000, 1.0))
    monitor = Monitor(
        settings(database_url, model, window_rows=WINDOW), engine, champion_version=lambda _: "1",
        references=source,
    )  # fmt: skip
    for i, spread in enumerate((1.0, 3.0)):  # the second window moves into the noisy region
        block = frame(WINDOW, spread)
        rows = [
            {
                "id": str(uuid.uuid4()),
                "created_at": T0 + timedelta(seconds=i * WINDOW + j),
                "model_name": model,
                "model_version": "1",
                "features": dumps({"a": a, "b": b}),
                "output": dumps(float(p)),
                "probabilities": None,
                "latency_ms": 1.0,
                "endpoint": "predict",
            }  # fmt: skip
            for j, (a, b, p) in enumerate(
                zip(block["a"], block["b"], regressor.predict(block[["a", "b"]]), strict=True)
            )
        ]
        with engine.begin() as conn:
            repository.insert_predictions(conn, rows=rows)
        monitor.run_due("drift")
    clean, noisy = (orjson.loads(r.summary) for r in runs_of(engine, model, KIND))
    assert clean["method"] == noisy["method"] == "dle" and clean["metric"] == "rmse"
    assert clean["limits"] == DLE_LIMITS
    rmse = [
        next(m for m in s["estimate"]["metrics"] if m["metric"] == "rmse")["value"] for s in (clean, noisy)
    ]
    assert rmse[1] > 1.5 * rmse[0]
    assert not clean["breach"]["is_drift"] and noisy["breach"]["is_drift"]
