"""Daily rollups: counts, latency percentiles and the prediction distribution of each version-day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from service.codec import loads
from service.config import Settings
from service.db.engine import make_engine
from service.db.tables import Prediction
from service.lifecycle import rollup_stats
from service.lifecycle.retention import run_retention
from service.lifecycle.rollup_stats import DayStats
from service.lifecycle.rollups import (
    EDGES,
    RECOMPUTE_EVERY,
    RollupReport,
    histogram_quantile,
    roll_up_pending,
    run_rollups,
)
from tests.support.prediction_log import insert, prediction_row, unique_model

NOW = datetime(2026, 8, 10, 9, tzinfo=UTC)
DAY = datetime(2026, 8, 7, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def rollups(engine: sa.Engine, model: str) -> dict[tuple[str, str], dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT * FROM prediction_rollups WHERE model_name = :m"), {"m": model}
        ).mappings()
        return {(r["model_version"], str(r["day"])[:10]): dict(r) for r in rows}


def test_counts_latency_percentiles_and_class_counts(engine: sa.Engine) -> None:
    model = unique_model()
    rng = np.random.default_rng(3)
    latencies = rng.lognormal(1.0, 0.8, 3000)
    rows = [
        prediction_row(model, DAY + timedelta(seconds=20 * i), {"x": 1.0}, output=["a", "b", "c"][i % 3],
                       probabilities={"a": 0.5, "b": 0.3, "c": 0.2}, latency_ms=float(latencies[i]))
        for i in range(3000)
    ]  # fmt: skip
    rows += [prediction_row(model, DAY + timedelta(hours=5), {"x": 1.0}, version="2", output="a")]
    rows += [prediction_row(model, NOW - timedelta(hours=1), {"x": 1.0})]  # today: not rolled up yet
    insert(engine, rows, {r["id"]: ("a", DAY + timedelta(days=1)) for r in rows[:700]})

    assert run_rollups(engine, now=NOW, models=[model]) == 2
    got = rollups(engine, model)
    assert set(got) == {("1", "2026-08-07"), ("2", "2026-08-07")}
    day = got[("1", "2026-08-07")]
    assert (day["predictions"], day["labeled"], bool(day["final"])) == (3000, 700, False)
    for q in ("50", "95", "99"):
        exact = float(np.percentile(latencies, int(q)))
        assert day[f"latency_p{q}"] == pytest.approx(exact, rel=0.025)
    assert day["latency_max"] == pytest.approx(latencies.max())
    assert loads(day["outputs"]) == {
        "kind": "classes",
        "counts": {"a": 1000, "b": 1000, "c": 1000},
        "complete": True,
    }


def test_numeric_outputs_get_quantiles(engine: sa.Engine) -> None:
    model = unique_model()
    values = np.random.default_rng(5).normal(100, 15, 2000)
    rows = [
        prediction_row(model, DAY + timedelta(seconds=30 * i), {"x": 1.0}, output=float(v))
        for i, v in enumerate(values)
    ]
    insert(engine, rows)
    run_rollups(engine, now=NOW, models=[model])
    out = loads(rollups(engine, model)[("1", "2026-08-07")]["outputs"])
    assert out["kind"] == "numeric" and out["sampled"] == 2000  # under the sample size: exact
    assert out["quantiles"]["0.5"] == pytest.approx(float(np.quantile(values, 0.5)))
    assert out["mean"] == pytest.approx(float(values.mean()))


def test_recent_days_are_recomputed_final_ones_never(engine: sa.Engine) -> None:
    model = unique_model()
    old_day, recent = DAY - timedelta(days=20), DAY + timedelta(days=2)  # recent: yesterday
    rows = [
        prediction_row(model, d + timedelta(minutes=i), {"x": 1.0})
        for d in (old_day, recent)
        for i in range(10)
    ]
    insert(engine, rows)
    run_rollups(engine, now=NOW, models=[model])
    insert(engine, [prediction_row(model, d + timedelta(hours=3), {"x": 1.0}) for d in (old_day, recent)])
    with engine.begin() as conn:
        freeze = "UPDATE prediction_rollups SET final = :t WHERE model_name = :m AND day < :d"
        conn.execute(sa.text(freeze), {"t": True, "m": model, "d": recent.date()})
    assert run_rollups(engine, now=NOW + timedelta(hours=1), models=[model]) == 0  # at most daily
    # only the recent day: labels may still arrive
    assert run_rollups(engine, now=NOW + RECOMPUTE_EVERY, models=[model]) == 1
    got = rollups(engine, model)
    assert got[("1", "2026-08-09")]["predictions"] == 11
    assert (
        got[("1", old_day.date().isoformat())]["predictions"] == 10
    )  # final: what is left never replaces it
    # computed once its labels settled (2 days after the day ended): never again
    assert run_rollups(engine, now=NOW + 2 * RECOMPUTE_EVERY, models=[model]) == 1
    assert run_rollups(engine, now=NOW + 4 * RECOMPUTE_EVERY, models=[model]) == 0


def test_histogram_quantile_bounds() -> None:
    counts = np.zeros(len(EDGES) - 1, np.int64)
    assert histogram_quantile(counts, 0.5) is None
    counts[np.searchsorted(EDGES, 12.0) - 1] = 5
    assert histogram_quantile(counts, 0.99) == pytest.approx(12.0, rel=0.012)


def _stored(engine: sa.Engine, model: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        k: {c: v for c, v in r.items() if c not in ("id", "model_name", "computed_at")}
        for k, r in rollups(engine, model).items()
    }


def _progress(engine: sa.Engine, model: str) -> int:
    with engine.connect() as conn:
        stmt = sa.text("SELECT count(*) FROM rollup_progress WHERE model_name = :m")
        return int(conn.execute(stmt, {"m": model}).scalar_one())


def test_a_row_budget_stops_mid_day_and_the_next_run_continues(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day read over several runs (its state saved in between) gives exactly the rollup of one run."""
    monkeypatch.setattr(rollup_stats, "SAMPLE", 150)  # the reservoir replaces values across runs
    values = np.random.default_rng(9).normal(50, 10, 1000)
    budgeted, whole = unique_model(), unique_model()
    for model in (budgeted, whole):
        rows = [
            prediction_row(model, DAY + timedelta(seconds=60 * i), {"x": 1.0}, output=float(v),
                           latency_ms=1.0 + i % 13)
            for i, v in enumerate(values)
        ]  # fmt: skip
        insert(engine, rows, {r["id"]: (1.0, DAY + timedelta(days=1)) for r in rows[::4]})

    runs: list[RollupReport] = []
    while not runs or not runs[-1].finished:
        runs.append(roll_up_pending(engine, now=NOW, models=[budgeted], max_rows=250, chunk_rows=100))
        if not runs[-1].finished:
            assert rollups(engine, budgeted) == {} and _progress(engine, budgeted) == 1
        assert len(runs) < 10
    assert [(r.rows, r.completed) for r in runs] == [(300, 0), (300, 0), (300, 0), (100, 1)]
    assert _progress(engine, budgeted) == 0
    assert roll_up_pending(engine, now=NOW, models=[whole], chunk_rows=100).completed == 1

    got = _stored(engine, budgeted)
    assert got == _stored(engine, whole)
    day = got[("1", "2026-08-07")]
    assert (day["predictions"], day["labeled"]) == (1000, 250)
    out = loads(day["outputs"])
    assert out["kind"] == "numeric" and out["sampled"] == 150
    assert out["quantiles"]["0.5"] == pytest.approx(float(np.median(values)), abs=3.0)


def test_a_time_budget_reads_one_chunk_per_run_and_keeps_days_in_order(engine: sa.Engine) -> None:
    model = unique_model()
    rows = [
        prediction_row(model, DAY + timedelta(days=d, minutes=i), {"x": 1.0})
        for d in (0, 1)
        for i in range(30)
    ]
    insert(engine, rows)
    reads = []
    while True:  # a zero budget: every run still reads one chunk (each its own short read)
        report = roll_up_pending(engine, now=NOW, models=[model], max_seconds=0.0, chunk_rows=20)
        reads.append((report.rows, report.completed))
        if report.finished:
            break
    assert reads == [(20, 0), (10, 1), (20, 0), (10, 1)]
    got = rollups(engine, model)
    assert {k: v["predictions"] for k, v in got.items()} == {("1", "2026-08-07"): 30, ("1", "2026-08-08"): 30}


def test_retention_waits_until_the_rollups_have_caught_up(engine: sa.Engine) -> None:
    model = unique_model()
    old = DAY - timedelta(days=40)
    insert(engine, [prediction_row(model, old + timedelta(days=d, hours=1), {"x": 1.0}) for d in range(3)])
    insert(engine, [prediction_row(model, NOW - timedelta(hours=2), {"x": 1.0})])
    settings = Settings(retention_days=30, rollup_max_seconds=1e-9, retention_pause_ms=0)
    reports = [run_retention(engine, settings, now=NOW, models=[model]) for _ in range(3)]
    # one day rolled up a run; nothing deleted until every day is
    assert [(r.rollups, r.deleted, r.finished) for r in reports] == [
        (1, 0, False),
        (1, 0, False),
        (1, 3, True),
    ]
    assert len(rollups(engine, model)) == 3
    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).where(Prediction.model_name == model)).scalar_one()
    assert left == 1  # today's row


def test_day_stats_state_round_trips_mid_day() -> None:
    rows = [(0.5 + i % 9, str(i * 0.25), None, i % 3 == 0) for i in range(40_000)]
    whole, split = DayStats(seed=7), DayStats(seed=7)
    for start in range(0, len(rows), 5000):
        whole.add(rows[start : start + 5000])
        split.add(rows[start : start + 5000])
        split = DayStats.from_state(split.to_state())
    assert whole.to_state() == split.to_state()
    assert len(whole.numeric) == rollup_stats.SAMPLE and whole.numeric_seen == 40_000
    # uniform over the day: the sample's mean is the day's (0.25 * 19999.5), within 3 standard errors
    assert np.mean(whole.numeric) == pytest.approx(0.25 * 19_999.5, abs=3 * 0.25 * 11_547 / 100)
