"""Performance breaches by evidence at service level: calibration, power with a pooled baseline, the
decisive fast path, and the task taken from the reference (never from label values)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session, select

from service.codec import dumps
from service.db.engine import make_engine
from service.db.tables import DriftRun, Episode, Feedback
from service.monitor.references import store_reference
from service.monitor.runner import Monitor
from service.serving import store as repository
from tests.support.monitor import settings, unique_model

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ROWS = 1000


def log_window(
    engine: sa.Engine, model: str, index: int, *, accuracy: float | None = None, rng: np.random.Generator,
    exact: bool = True, regression_error: float | None = None,
) -> None:  # fmt: skip
    """One labeled window of ROWS predictions: a classifier right on `accuracy` of them (exactly, or each
    row with that probability), or a regressor off by about `regression_error` on integer-valued targets."""
    if regression_error is not None:
        truth = rng.integers(25, 300, ROWS).astype(float)  # integer-valued, like the diabetes targets
        outputs = [float(t + rng.normal(0, regression_error)) for t in truth]
        labels: list[object] = truth.tolist()
    else:
        assert accuracy is not None
        right = np.zeros(ROWS, dtype=bool)
        if exact:
            right[: round(accuracy * ROWS)] = True
            rng.shuffle(right)
        else:
            right = rng.random(ROWS) < accuracy
        truth_int = rng.integers(0, 2, ROWS)
        labels = truth_int.tolist()
        outputs = [int(t) if r else int(1 - t) for t, r in zip(truth_int, right, strict=True)]
    start = T0 + timedelta(seconds=index * ROWS)
    ids = [str(uuid.uuid4()) for _ in range(ROWS)]
    rows = [
        {"id": ids[i], "created_at": start + timedelta(seconds=i), "model_name": model, "model_version": "1",
         "features": dumps({"x": 0.0}), "output": dumps(outputs[i]), "probabilities": None, "latency_ms": 1.0,
         "endpoint": "predict"}
        for i in range(ROWS)
    ]  # fmt: skip
    with engine.begin() as conn:
        repository.insert_predictions(conn, rows=rows)
        conn.execute(
            sa.insert(Feedback.__table__),  # type: ignore[attr-defined]
            [{"prediction_id": ids[i], "label": dumps(labels[i]),
              "received_at": start + timedelta(seconds=i, milliseconds=500)} for i in range(ROWS)],
        )  # fmt: skip


def episodes_of(engine: sa.Engine, model: str) -> list[Episode]:
    with Session(engine) as session:
        return list(session.exec(select(Episode).where(Episode.model_name == model)))


def monitor_for(database_url: str, model: str, task: str = "classification", **overrides: object) -> Monitor:
    engine = make_engine(database_url)
    store_reference(
        engine, model_name=model, model_version="1", data=pd.DataFrame({"x": np.linspace(0, 1, 300)}),
        features=["x"], source="test", task=task,
    )  # fmt: skip
    s = settings(database_url, model, performance_window_rows=ROWS, **overrides)
    return Monitor(s, engine, champion_version=lambda _: "1")


def checked(monitor: Monitor, engine: sa.Engine, model: str, index: int, **window: object) -> DriftRun:
    log_window(engine, model, index, **window)  # type: ignore[arg-type]
    (run,) = monitor.run_due("performance")
    return run


def test_no_change_windows_rarely_breach(database_url: str) -> None:
    model = unique_model()
    monitor = monitor_for(database_url, model)
    rng = np.random.default_rng(11)
    runs = [checked(monitor, monitor.engine, model, i, accuracy=0.8, rng=rng, exact=False) for i in range(30)]
    summaries = [orjson.loads(r.summary) for r in runs]
    assert summaries[0]["baseline"] is True
    # alpha 0.01 and a 2-point minimum effect: 29 tested windows breach at most ~0.3 times on average
    assert sum(r.is_breach for r in runs) <= 1
    assert episodes_of(monitor.engine, model) == []
    last = summaries[-1]["evidence"]
    assert last["test"] == "fisher_exact" and last["alpha"] == 0.01 and last["min_effect"] == 0.02
    assert summaries[-1]["baseline_state"]["baseline"]["n"] >= 20 * ROWS  # clean windows were pooled


def test_a_four_point_drop_on_1000_rows_breaches_against_the_pooled_baseline(database_url: str) -> None:
    model = unique_model()
    monitor = monitor_for(database_url, model)
    rng = np.random.default_rng(3)
    for i in range(7):
        assert not checked(monitor, monitor.engine, model, i, accuracy=0.83, rng=rng).is_breach
    dropped = checked(monitor, monitor.engine, model, 7, accuracy=0.79, rng=rng)
    summary = orjson.loads(dropped.summary)
    assert summary["baseline_state"]["baseline"]["n"] >= 4 * ROWS  # pooled, not the first window alone
    ev = summary["evidence"]
    assert dropped.is_breach and ev["p_val"] < 0.01 and abs(ev["effect"] - 0.04) < 1e-9
    assert not ev["is_decisive"]  # weak evidence: K of M decides
    assert "breach" in summary["message"] and "p=" in summary["message"]
    assert episodes_of(monitor.engine, model) == []  # 1 breach of the last 3 < K = 2


def test_a_decisive_window_opens_the_episode_on_its_own(database_url: str) -> None:
    model = unique_model()
    monitor = monitor_for(database_url, model, breach_k=2, breach_m=3)
    rng = np.random.default_rng(5)
    for i in range(3):
        checked(monitor, monitor.engine, model, i, accuracy=0.85, rng=rng)
    collapsed = checked(monitor, monitor.engine, model, 3, accuracy=0.55, rng=rng)
    ev = orjson.loads(collapsed.summary)["evidence"]
    assert ev["is_decisive"] and ev["p_val"] < 1e-6
    (episode,) = episodes_of(monitor.engine, model)
    assert (episode.status, episode.first_run_id, episode.last_run_id) == ("open", collapsed.id, collapsed.id)


def test_a_regressor_is_watched_on_rmse_whatever_its_labels_look_like(database_url: str) -> None:
    model = unique_model()
    monitor = monitor_for(database_url, model, task="regression")
    rng = np.random.default_rng(8)
    runs = [checked(monitor, monitor.engine, model, i, regression_error=20.0, rng=rng) for i in range(3)]
    worse = checked(monitor, monitor.engine, model, 3, regression_error=45.0, rng=rng)
    summaries = [orjson.loads(r.summary) for r in [*runs, worse]]
    seen = {(s["task"], s["metric"], s["task_source"]) for s in summaries}
    assert seen == {("regression", "rmse", "model")}
    assert 15 < summaries[0]["metrics"]["rmse"] < 25
    assert not any(r.is_breach for r in runs)
    assert worse.is_breach and summaries[-1]["evidence"]["test"] == "welch_t"
    assert summaries[-1]["evidence"]["is_decisive"]  # 125% worse with p ~ 0


def test_a_metric_that_does_not_fit_the_task_is_shown_not_crashed(database_url: str) -> None:
    model = unique_model()
    monitor = monitor_for(database_url, model, task="regression", performance_metric="accuracy")
    run = checked(monitor, monitor.engine, model, 0, regression_error=5.0, rng=np.random.default_rng(1))
    assert run.status == "invalid_setting" and not run.is_breach
    assert "DRIFTLOOP_PERFORMANCE_METRIC='accuracy'" in orjson.loads(run.summary)["message"]


def test_a_metric_the_window_cannot_give_is_no_evidence_not_a_crash(database_url: str) -> None:
    model = unique_model()
    monitor = monitor_for(database_url, model, performance_metric="log_loss")  # no probabilities logged
    run = checked(monitor, monitor.engine, model, 0, accuracy=0.8, rng=np.random.default_rng(2))
    assert run.status == "insufficient_data" and not run.is_breach
    assert "log_loss cannot be tested on this window" in orjson.loads(run.summary)["message"]
