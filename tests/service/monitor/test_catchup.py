"""Every complete window is checked, oldest first, even when traffic outruns the checks."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
import sqlalchemy as sa
from sklearn.pipeline import Pipeline

from service.db.engine import make_engine
from service.db.tables import DriftRun
from service.monitor import Monitor
from tests.support.monitor import log_traffic, settings, unique_model

ROWS = 200


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def _window(run: DriftRun) -> dict[str, int]:
    window: dict[str, int] = orjson.loads(run.summary)["window"]
    return window


def test_traffic_above_the_check_rate_has_every_window_checked_in_order(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    model = unique_model()
    s = settings(database_url, model, window_rows=ROWS, window_checks_per_tick=3)
    monitor = Monitor(s, engine, champion_version=lambda _: "1")
    log_traffic(engine, demo_estimator, n_rows=10 * ROWS, offset=0, model=model)  # 10 windows at once
    runs = monitor.run_due("drift")
    assert [_window(r)["index"] for r in runs] == [0, 1, 2]  # the oldest first, three per tick
    log_traffic(engine, demo_estimator, n_rows=2 * ROWS, offset=10 * ROWS, model=model)
    # a second process (its own frontier) goes on where the first stopped
    other = Monitor(s, engine, champion_version=lambda _: "1")
    ticks = 0
    while new := other.run_due("drift"):
        assert len(new) <= 3
        runs += new
        ticks += 1
    assert ticks == 3
    windows = [_window(r) for r in runs]
    assert [w["index"] for w in windows] == list(range(12))
    # consecutive blocks of the commit sequence: nothing between them, nothing in two
    assert all(w["last_seq"] - w["first_seq"] == ROWS - 1 for w in windows)
    assert all(b["first_seq"] == a["last_seq"] + 1 for a, b in zip(windows, windows[1:], strict=False))
    assert all(w["skipped_windows"] == 0 for w in windows)
    assert monitor.run_due("drift") == []


def test_sampling_is_opted_into_and_says_what_it_skipped(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    model = unique_model()
    s = settings(database_url, model, window_rows=ROWS, window_backlog="latest", breach_m=3)
    monitor = Monitor(s, engine, champion_version=lambda _: "1")
    log_traffic(engine, demo_estimator, n_rows=10 * ROWS, offset=0, model=model)
    runs = monitor.run_due("drift")
    assert [(_window(r)["index"], _window(r)["skipped_windows"]) for r in runs] == [(7, 7), (8, 0), (9, 0)]
    log_traffic(engine, demo_estimator, n_rows=5 * ROWS, offset=10 * ROWS, model=model)
    runs = Monitor(s, engine, champion_version=lambda _: "1").run_due("drift")
    assert [(_window(r)["index"], _window(r)["skipped_windows"]) for r in runs] == [(12, 2), (13, 0), (14, 0)]


def test_blocks_follow_the_last_checked_one_when_its_rows_are_deleted(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    model = unique_model()
    s = settings(database_url, model, window_rows=ROWS)
    log_traffic(engine, demo_estimator, n_rows=3 * ROWS, offset=0, model=model)
    checked = Monitor(s, engine, champion_version=lambda _: "1").run_due("drift")
    assert [_window(r)["index"] for r in checked] == [0, 1, 2]
    # retention deletes rows of checked windows (here: 300 of the first two blocks)
    cutoff = _window(checked[1])["last_seq"]
    with engine.begin() as conn:
        deleted = conn.execute(
            sa.text("DELETE FROM predictions WHERE model_name = :m AND seq <= :s AND seq % 4 <> 0"),
            {"m": model, "s": cutoff},
        ).rowcount
    assert deleted == 300
    log_traffic(engine, demo_estimator, n_rows=2 * ROWS, offset=3 * ROWS, model=model)
    runs = Monitor(s, engine, champion_version=lambda _: "1").run_due("drift")  # a cold monitor too
    windows = [_window(r) for r in runs]
    assert [w["index"] for w in windows] == [3, 4]
    assert windows[0]["first_seq"] == _window(checked[2])["last_seq"] + 1  # nothing skipped, nothing twice
    assert windows[1]["first_seq"] == windows[0]["last_seq"] + 1
    assert all(r.n_rows == ROWS for r in runs)
