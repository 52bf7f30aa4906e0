"""Progress toward the next drift window, after the real monitor's checks, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sklearn.pipeline import Pipeline

from service.config import Settings
from service.dashboard import progress
from service.dashboard.progress import next_window, progress_text, render_progress
from service.db.engine import make_engine
from service.monitor.runner import Monitor
from tests.support.monitor import add_reference, log_traffic, settings, unique_model
from tests.support.prediction_log import insert, prediction_row

BUCKET = datetime(2026, 3, 1, 10, tzinfo=UTC)  # the hour of the time-window tests
NOW = BUCKET + timedelta(minutes=45)  # 15 minutes left in it


def _hourly(database_url: str) -> tuple[str, Settings, sa.Engine]:
    """A new model watched in one-hour time windows, its settings and an engine."""
    model = unique_model()
    s = settings(database_url, model, window_kind="time", window_seconds=3600.0)
    return model, s, make_engine(database_url)


def test_rows_after_the_last_checked_block_count_toward_the_next(
    database_url: str, demo_estimator: Pipeline
) -> None:
    model, other = unique_model(), unique_model()
    s = settings(database_url, model)
    engine = make_engine(database_url)
    add_reference(engine, model)
    assert next_window(engine, name=model, version=None, settings=s) is None
    log_traffic(engine, demo_estimator, n_rows=2601, offset=0, model=model)
    log_traffic(engine, demo_estimator, n_rows=700, offset=0, model=other)  # another model's rows
    log_traffic(engine, demo_estimator, n_rows=50, offset=0, model=model, version="2")  # another version
    before = next_window(engine, name=model, version="1", settings=s)
    assert before is not None and before["rows"] == 1000 and before["complete"]  # two blocks wait
    runs = Monitor(s, engine, champion_version=lambda _: "1").run_due("drift")
    assert [r.n_rows for r in runs] == [1000, 1000]
    found = next_window(engine, name=model, version="1", settings=s)
    assert found is not None
    assert (found["mode"], found["rows"], found["size"], found["complete"]) == ("rows", 601, 1000, False)
    with engine.connect() as conn:  # counted after the last row of the second block
        second_last = conn.execute(
            sa.text("SELECT seq FROM predictions WHERE model_name = :m AND model_version = '1' "
                    "ORDER BY seq LIMIT 1 OFFSET 1999"), {"m": model}
        ).scalar_one()  # fmt: skip
    assert found["after_seq"] == second_last
    assert progress_text(found) == "601 / 1000 rows"
    html = render_progress(found)
    assert 'data-rows="601"' in html and "601 / 1000 rows" in html and 'value="601"' in html
    other_found = next_window(engine, name=other, version="1", settings=settings(database_url, other))
    assert other_found is not None and other_found["rows"] == 700
    small = next_window(
        engine, name=model, version="1", settings=settings(database_url, model, window_rows=500)
    )
    assert small is not None and small["rows"] == 500 and small["complete"]  # no block of 500 checked yet


def test_a_time_window_says_the_time_left_and_its_rows(database_url: str) -> None:
    model, s, engine = _hourly(database_url)
    rows = [prediction_row(model, BUCKET + timedelta(minutes=i), {"x": 1.0}) for i in range(45)]
    rows += [prediction_row(model, BUCKET - timedelta(minutes=1), {"x": 1.0})]  # the previous bucket
    insert(engine, rows)
    found = next_window(engine, name=model, version="1", settings=s, now=NOW)
    assert found is not None and found["mode"] == "time" and found["rows"] == 45
    assert found["start"] == BUCKET.isoformat() and found["seconds_left"] == 15 * 60.0
    assert progress_text(found) == "15 min 00 s left (45 rows so far)"


def test_labels_after_the_last_checked_performance_block_count_toward_the_next(
    database_url: str, demo_estimator: Pipeline
) -> None:
    model, other = unique_model(), unique_model()
    s = settings(database_url, model, performance_window_rows=200)
    engine = make_engine(database_url)
    add_reference(engine, model)
    log_traffic(engine, demo_estimator, n_rows=300, offset=0, model=model)  # unlabeled: not counted
    log_traffic(engine, demo_estimator, n_rows=530, offset=300, model=model, labeled=True)
    log_traffic(engine, demo_estimator, n_rows=90, offset=0, model=other, labeled=True)
    log_traffic(engine, demo_estimator, n_rows=40, offset=0, model=model, version="2", labeled=True)
    assert next_window(engine, name=model, version=None, settings=s, kind="performance") is None
    before = next_window(engine, name=model, version="1", settings=s, kind="performance")
    assert before is not None and before["rows"] == 200 and before["complete"] and before["after_seq"] == 0
    runs = Monitor(s, engine, champion_version=lambda _: "1").run_due("performance")
    assert [r.n_rows for r in runs] == [200, 200]
    found = next_window(engine, name=model, version="1", settings=s, kind="performance")
    assert found is not None
    assert (found["kind"], found["mode"], found["rows"], found["size"]) == ("performance", "rows", 130, 200)
    with engine.connect() as conn:  # counted after the last label of the second block (label order)
        second_last = conn.execute(
            sa.text("SELECT f.seq FROM feedback f JOIN predictions p ON p.id = f.prediction_id "
                    "WHERE p.model_name = :m AND p.model_version = '1' ORDER BY f.seq LIMIT 1 OFFSET 399"),
            {"m": model},
        ).scalar_one()  # fmt: skip
    assert found["after_seq"] == second_last
    assert progress_text(found) == "130 / 200 labeled rows"
    html = render_progress(found, "performance")
    assert 'id="next-label-window"' in html and "Next performance window of version 1" in html
    assert 'value="130"' in html and "130 / 200 labeled rows" in html
    drift = next_window(engine, name=model, version="1", settings=s)  # the drift line is unchanged
    assert drift is not None and drift["rows"] == 830 and progress_text(drift) == "830 / 1000 rows"
    default = next_window(engine, name=model, version="1", settings=settings(database_url, model),
                          kind="performance")  # fmt: skip
    assert default is not None and (default["rows"], default["size"]) == (500, 500)  # no 500-block yet


def test_a_time_window_counts_the_labels_received_in_its_bucket(database_url: str) -> None:
    model, s, engine = _hourly(database_url)
    rows = [prediction_row(model, BUCKET - timedelta(hours=2, minutes=i), {"x": 1.0}) for i in range(30)]
    # labels arrive in this bucket for predictions of earlier ones; 5 arrived in the bucket before
    labels = {r["id"]: (1, BUCKET + timedelta(minutes=i)) for i, r in enumerate(rows[:25])}
    labels |= {r["id"]: (0, BUCKET - timedelta(minutes=1)) for r in rows[25:]}
    insert(engine, rows, labels=labels)
    found = next_window(engine, name=model, version="1", settings=s, now=NOW, kind="performance")
    assert found is not None and found["mode"] == "time" and found["rows"] == 25
    assert progress_text(found) == "15 min 00 s left (25 labeled rows so far)"
    drift = next_window(engine, name=model, version="1", settings=s, now=NOW)
    assert drift is not None and drift["rows"] == 0  # the predictions were made two hours before


def test_labels_are_walked_back_from_the_versions_newest_row_and_a_cut_walk_says_at_least(
    database_url: str, demo_estimator: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, busy = unique_model(), unique_model()
    s = settings(database_url, model, performance_window_rows=500)
    engine = make_engine(database_url)
    log_traffic(engine, demo_estimator, n_rows=300, offset=0, model=model, labeled=True)
    log_traffic(engine, demo_estimator, n_rows=3000, offset=0, model=busy)  # newer rows of another model
    monkeypatch.setattr(progress, "SPAN", 200)
    monkeypatch.setattr(progress, "SPAN_BUDGET", 2000)  # less than the busy model's rows above
    found = next_window(engine, name=model, version="1", settings=s, kind="performance")
    assert found is not None and (found["rows"], found["at_least"]) == (300, False)
    assert progress_text(found) == "300 / 500 labeled rows"
    monkeypatch.setattr(progress, "SPAN_BUDGET", 200)  # the walk stops before the version's first row
    cut = next_window(engine, name=model, version="1", settings=s, kind="performance")
    assert cut is not None and cut["at_least"] and 0 < cut["rows"] < 300
    assert progress_text(cut) == f"at least {cut['rows']} / 500 labeled rows"
