"""Daily rollups: counts, latency percentiles and the prediction distribution of each version-day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from service.codec import loads
from service.db.engine import make_engine
from service.lifecycle.rollups import EDGES, histogram_quantile, run_rollups
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
    assert run_rollups(engine, now=NOW, models=[model]) == 1  # only the recent day: labels may still arrive
    got = rollups(engine, model)
    assert got[("1", "2026-08-09")]["predictions"] == 11
    assert (
        got[("1", old_day.date().isoformat())]["predictions"] == 10
    )  # final: what is left never replaces it


def test_histogram_quantile_bounds() -> None:
    counts = np.zeros(len(EDGES) - 1, np.int64)
    assert histogram_quantile(counts, 0.5) is None
    counts[np.searchsorted(EDGES, 12.0) - 1] = 5
    assert histogram_quantile(counts, 0.99) == pytest.approx(12.0, rel=0.012)
