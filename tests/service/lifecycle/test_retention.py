"""Retention deletes old rows in bounded batches and keeps what stored runs, episodes and jobs need."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from service.config import Settings
from service.db.engine import make_engine
from service.db.tables import DriftRun, Episode, RetrainJob
from service.lifecycle import batches
from service.lifecycle.retention import run_retention
from tests.support.prediction_log import FB, P, insert, prediction_row, unique_model

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "retention_pause_ms": 0,
        "retention_rest_ratio": 0,
        "breach_m": 3,
        "window_kind": "time",
    }
    return Settings(**{**values, **overrides})


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def rows_at(model: str, days_ago: float, n: int, version: str = "1") -> list[dict[str, Any]]:
    return [
        prediction_row(
            model, ago(days_ago) + timedelta(seconds=i), {"x": float(i)}, version=version, output=i % 2
        )
        for i in range(n)
    ]


def ids(engine: sa.Engine, model: str) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(P.c.id).where(P.c.model_name == model)).scalars())


def labeled_ids(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(FB.c.prediction_id)).scalars())


def add_run(
    engine: sa.Engine, model: str, kind: str, start: datetime, end: datetime, version: str = "1"
) -> int:
    with Session(engine) as session:
        run = DriftRun(
            window_key=f"test:{uuid.uuid4().hex}", kind=kind, trigger="schedule", model_name=model,
            model_version=version, window_start=start, window_end=end, n_rows=10, status="drift",
            is_breach=True, summary="{}", started_at=end, finished_at=end,
        )  # fmt: skip
        session.add(run)
        session.commit()
        assert run.id is not None
        return run.id


def run_flags(engine: sa.Engine, run_ids: list[int]) -> list[bool]:
    with Session(engine) as session:
        return [session.get(DriftRun, i).rows_deleted_at is not None for i in run_ids]  # type: ignore[union-attr]


def test_unlabeled_rows_go_after_30_days_labeled_after_180(engine: sa.Engine, database_url: str) -> None:
    model = unique_model()
    old, mid, young, ancient = (
        rows_at(model, 40, 20),
        rows_at(model, 100, 10),
        rows_at(model, 5, 10),
        rows_at(model, 200, 6),
    )
    labels = {r["id"]: (1, r["created_at"] + timedelta(hours=1)) for r in old[:5] + mid[:4] + ancient[:3]}
    insert(engine, ancient + mid + old + young, labels)

    report = run_retention(engine, settings(database_url), now=NOW, models=[model])

    kept = ids(engine, model)
    assert kept == {r["id"] for r in young + old[:5] + mid[:4]}
    assert not {r["id"] for r in ancient[:3]} & labeled_ids(engine)  # their feedback went with them
    assert {r["id"] for r in old[:5] + mid[:4]} <= labeled_ids(engine)
    assert report.finished and report.per_version[(model, "1")] == 6 + 6 + 15
    with engine.connect() as conn:
        purge = conn.execute(
            sa.text("SELECT rows_deleted, labeled_deleted FROM retention_purges WHERE model_name = :m"),
            {"m": model},
        ).one()
        per_day = "SELECT day, predictions, labeled, final FROM prediction_rollups WHERE model_name = :m"
        days = conn.execute(sa.text(per_day + " ORDER BY day"), {"m": model}).all()
    assert tuple(purge) == (27, 3)
    # every day was rolled up from all its rows before any were deleted; the days that lost rows are final
    by_day = {str(d[0])[:10]: (d[1], d[2], bool(d[3])) for d in days}
    assert by_day[ago(200).date().isoformat()] == (6, 3, True)
    assert by_day[ago(40).date().isoformat()] == (20, 5, True)
    assert by_day[ago(5).date().isoformat()] == (10, 0, False)


def test_open_episode_keeps_its_windows_other_runs_are_marked(engine: sa.Engine, database_url: str) -> None:
    model = unique_model()
    closed_rows, lead_rows, episode_rows = (
        rows_at(model, 60, 10),
        rows_at(model, 50, 10),
        rows_at(model, 45, 10),
    )
    insert(engine, closed_rows + lead_rows + episode_rows + rows_at(model, 1, 5))
    closed = add_run(engine, model, "drift", ago(60), ago(60) + timedelta(seconds=9))
    older = add_run(engine, model, "drift", ago(55), ago(55) + timedelta(seconds=9))  # beyond the M-1 lead
    lead = add_run(engine, model, "drift", ago(50), ago(50) + timedelta(seconds=9))
    first = add_run(engine, model, "drift", ago(45), ago(45) + timedelta(seconds=9))
    last = add_run(engine, model, "drift", ago(1), ago(1) + timedelta(seconds=4))
    with Session(engine) as session:
        session.add(
            Episode(
                model_name=model,
                kind="drift",
                status="open",
                opened_at=ago(45),
                first_run_id=first,
                last_run_id=last,
            )
        )
        session.commit()

    run_retention(engine, settings(database_url, breach_m=2), now=NOW, models=[model])

    kept = ids(engine, model)
    assert {r["id"] for r in lead_rows + episode_rows} <= kept  # the run before the first (M-1 = 1) and after
    assert not {r["id"] for r in closed_rows} & kept
    assert run_flags(engine, [closed, older, lead, first, last]) == [True, False, False, False, False]


def test_retrain_jobs_keep_their_training_rows(engine: sa.Engine, database_url: str) -> None:
    model, other = unique_model(), unique_model()
    for name in (model, other):
        rows = rows_at(name, 300, 4) + rows_at(name, 250, 4)
        insert(engine, rows, {r["id"]: (0, r["created_at"]) for r in rows})
    with Session(engine) as session:
        # unfinished without a window: it will read the model's latest labeled rows, wherever they are
        session.add(RetrainJob(model_name=model, status="queued", trigger="manual", created_at=NOW))
        # finished recently with a window from 260 days ago: its training rows stay
        session.add(RetrainJob(model_name=other, status="succeeded", trigger="episode", window_start=ago(260),
                               created_at=ago(3), finished_at=ago(2)))  # fmt: skip
        session.commit()
    run_retention(engine, settings(database_url), now=NOW, models=[model, other])
    assert len(ids(engine, model)) == 8
    assert len(ids(engine, other)) == 4  # the 300-day rows were before the window


def test_rows_no_scheduled_check_has_read_are_kept(engine: sa.Engine, database_url: str) -> None:
    model = unique_model()
    checked, unread = rows_at(model, 50, 10), rows_at(model, 40, 10)
    insert(engine, checked + unread)
    # a time window ending 2 minutes after its rows (retention stays a minute clear of a window's end)
    add_run(engine, model, "drift", ago(50), ago(50) + timedelta(minutes=2))
    run_retention(engine, settings(database_url), now=NOW, models=[model])
    assert ids(engine, model) == {r["id"] for r in unread}


def test_the_newest_row_of_a_version_is_kept(engine: sa.Engine, database_url: str) -> None:
    model = unique_model()
    rows = rows_at(model, 90, 5)
    insert(engine, rows)
    run_retention(engine, settings(database_url), now=NOW, models=[model])
    assert ids(engine, model) == {rows[-1]["id"]}


def test_batches_are_bounded_and_short(engine: sa.Engine, database_url: str) -> None:
    model = unique_model()
    insert(engine, rows_at(model, 40, 50) + rows_at(model, 2, 1))
    deletes: list[int] = []

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM PREDICTIONS"):
            deletes.append(cursor.rowcount)

    sa.event.listen(engine, "after_cursor_execute", count)
    report = run_retention(engine, settings(database_url, retention_batch_rows=7), now=NOW, models=[model])
    sa.event.remove(engine, "after_cursor_execute", count)
    assert report.batches == 8 and deletes == [7] * 7 + [1]
    assert len(ids(engine, model)) == 1


def test_a_run_stops_at_its_time_budget_and_the_next_continues(engine: sa.Engine, database_url: str) -> None:
    model = unique_model()
    insert(engine, rows_at(model, 40, 30) + rows_at(model, 2, 1))
    s = settings(database_url, retention_batch_rows=5, retention_pause_ms=30, retention_max_seconds=0.05)
    first = run_retention(engine, s, now=NOW, models=[model])
    assert not first.finished and 0 < first.deleted < 30
    while not run_retention(engine, s, now=NOW, models=[model]).finished:
        pass
    assert len(ids(engine, model)) == 1


def test_zero_days_keeps_everything(engine: sa.Engine, database_url: str) -> None:
    model = unique_model()
    insert(engine, rows_at(model, 400, 5) + rows_at(model, 1, 1))
    report = run_retention(engine, settings(database_url, retention_days=0), now=NOW, models=[model])
    assert report.deleted == 0 and len(ids(engine, model)) == 6


def test_row_windows_hold_labeled_rows_of_live_versions(engine: sa.Engine, database_url: str) -> None:
    """Under window_kind=rows, performance windows count labeled rows by position: a version with recent
    traffic keeps its labeled rows (unlabeled ones go: drift blocks chain over seq); a retired one loses
    both."""
    live, retired = unique_model(), unique_model()
    old_live, old_retired = rows_at(live, 200, 6), rows_at(retired, 200, 6)
    labels = {r["id"]: (1, r["created_at"]) for r in old_live[:3] + old_retired[:3]}
    insert(engine, old_live + rows_at(live, 1, 1) + old_retired + rows_at(retired, 199, 1), labels)
    s = settings(database_url, window_kind="rows")
    report = run_retention(engine, s, now=NOW, models=[live, retired])
    assert report.held == [(live, "1")]
    assert ids(engine, live) - {r["id"] for r in old_live} and {r["id"] for r in old_live[:3]} <= ids(
        engine, live
    )
    assert len(ids(engine, live)) == 4 and len(ids(engine, retired)) == 1


def test_a_model_keeps_rows_for_its_own_periods_from_the_models_file(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    short, default = unique_model(), unique_model()
    models_file = tmp_path / "models.toml"
    models_file.write_text(f'[models."{short}"]\nretention_days = 5\nlabeled_retention_days = 10\n')
    unlabeled, labeled, old_labeled = rows_at(short, 8, 3), rows_at(short, 8, 2), rows_at(short, 12, 2)
    others = rows_at(default, 8, 3)
    insert(
        engine,
        unlabeled + labeled + old_labeled + rows_at(short, 1, 1) + others + rows_at(default, 1, 1),
        {r["id"]: (1, r["created_at"]) for r in labeled + old_labeled},
    )
    s = settings(database_url, models_file=str(models_file))
    report = run_retention(engine, s, now=NOW, models=[short, default])
    assert report.per_version == {(short, "1"): 5}
    assert {r["id"] for r in labeled} <= ids(engine, short) and len(ids(engine, short)) == 3
    assert {r["id"] for r in others} <= ids(engine, default)  # the process's 30 days


def test_each_step_is_followed_by_a_rest_in_proportion_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(batches.time, "sleep", slept.append)
    pace = batches.Pace(pause_s=0.01, rest_ratio=4, max_seconds=60)
    with pace.step():
        began = time.monotonic()
        while time.monotonic() - began < 0.05:  # the step's own work
            pass
    with pace.step():
        pass  # a step shorter than the pause still waits the pause
    assert slept[0] >= 4 * 0.05 and slept[1] == pytest.approx(0.01, abs=0.005)
    assert pace.worked >= 0.05 and not pace.out_of_time()
