"""The scheduled daily export: each complete day of a model once, whole or not at all, retried on failure."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from service.config import Settings
from service.db.engine import make_engine
from service.db.tables import Prediction
from service.lifecycle import export as export_module
from service.lifecycle import scheduled_export
from service.lifecycle.arrow_types import PROBABILITIES
from service.lifecycle.export import ExportRequest, export_parquet
from service.lifecycle.export_state import EPOCH, export_floor, exported_through
from service.lifecycle.retention import run_retention
from service.lifecycle.scheduled_export import run_scheduled_export
from service.scheduler import JobSpec, run_job
from tests.support.prediction_log import insert, prediction_row, unique_model

DAY1, DAY2 = date(2026, 9, 1), date(2026, 9, 2)
T1 = datetime(2026, 9, 1, tzinfo=UTC)
NOW = datetime(2026, 9, 3, 9, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def seed(engine: sa.Engine, model: str, per_day: int = 120) -> list[dict[str, Any]]:
    """`per_day` rows on each of DAY1 and DAY2, two rows of today (never exported), a third labeled."""
    rows = [
        prediction_row(
            model,
            T1 + timedelta(days=d, seconds=600 * i),
            {"age": 20.5 + i, "n": i % 4, "city": "abc"[i % 3], "vip": i % 5 == 0},
            version="1" if d == 0 else "2",
            output=i % 2,
            probabilities={"0": 0.3, "1": 0.7},
            latency_ms=0.25 * i,
        )
        for d in (0, 1)
        for i in range(per_day)
    ]
    rows += [prediction_row(model, NOW - timedelta(hours=h), {"age": 1.0}) for h in (1, 2)]
    insert(engine, rows, {r["id"]: (r["output"] == "1", NOW) for r in rows[::3]})
    return rows


def settings_for(url: str, **more: Any) -> Settings:
    return Settings(export_url=url, **more)


def day_file(lake: Path, model: str, day: date) -> Path:
    return lake / model / f"date={day.isoformat()}" / "predictions.parquet"


def failures(model: str) -> float:
    return REGISTRY.get_sample_value("driftloop_export_failures_total", {"model": model}) or 0.0


def records(engine: sa.Engine, model: str) -> list[tuple[str, str, int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT day, status, rows, attempts FROM day_exports WHERE model_name = :m ORDER BY day"),
            {"m": model},
        ).all()
    return [(str(r[0])[:10], r[1], r[2], r[3]) for r in rows]


def test_each_complete_day_becomes_one_file_with_every_column_and_type(
    engine: sa.Engine, tmp_path: Path
) -> None:
    model = unique_model()
    rows = seed(engine, model)
    lake = tmp_path / "lake"
    settings = settings_for(f"file://{lake}")
    early = run_scheduled_export(
        engine, settings, now=datetime(2026, 9, 3, 0, 30, tzinfo=UTC), models=[model]
    )
    assert [(m, d) for m, d, _ in early.exported] == [(model, DAY1)]  # DAY2 ended less than the delay ago

    report = run_scheduled_export(engine, settings, now=NOW, models=[model])
    assert report.exported == [(model, DAY2, 120)] and report.failed == []
    assert sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*")) == [
        model, f"{model}/date=2026-09-01", f"{model}/date=2026-09-01/predictions.parquet",
        f"{model}/date=2026-09-02", f"{model}/date=2026-09-02/predictions.parquet",
    ]  # fmt: skip

    # each file is what `driftloop export` writes for that day: same columns, same types, same rows
    for day, day_rows in ((DAY1, rows[:120]), (DAY2, rows[120:240])):
        got = pq.read_table(day_file(lake, model, day))
        direct = tmp_path / f"direct-{day}.parquet"
        start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        export_parquet(engine, ExportRequest(model, since=start, until=start + timedelta(days=1)), direct)
        assert got.schema.remove_metadata().equals(pq.read_schema(direct).remove_metadata())
        assert got.column("prediction_id").to_pylist() == [r["id"] for r in day_rows]
    types = {f.name: f.type for f in pq.read_schema(day_file(lake, model, DAY1))}
    assert types == {
        "prediction_id": pa.string(), "created_at": pa.timestamp("us", tz="UTC"), "model_name": pa.string(),
        "model_version": pa.string(), "endpoint": pa.string(), "latency_ms": pa.float64(),
        "age": pa.float64(), "n": pa.int64(), "city": pa.string(), "vip": pa.bool_(), "output": pa.int64(),
        "probabilities": PROBABILITIES, "label": pa.bool_(),
        "label_received_at": pa.timestamp("us", tz="UTC"),
    }  # fmt: skip

    # the lake reads as one Hive-partitioned dataset
    dataset = ds.dataset(lake / model, format="parquet", partitioning="hive")
    table = dataset.to_table(columns=["prediction_id", "date", "label"])
    assert table.num_rows == 240 and table.column("label").null_count == 240 - 80
    assert sorted(set(table.column("date").to_pylist())) == ["2026-09-01", "2026-09-02"]

    mtimes = {p: p.stat().st_mtime_ns for p in lake.rglob("*.parquet")}
    again = run_scheduled_export(engine, settings, now=NOW + timedelta(days=0, hours=5), models=[model])
    assert again.exported == [] and again.failed == []  # nothing new: no day exported twice
    assert {p: p.stat().st_mtime_ns for p in lake.rglob("*.parquet")} == mtimes
    assert records(engine, model) == [("2026-09-01", "done", 120, 1), ("2026-09-02", "done", 120, 1)]
    with engine.connect() as conn:
        assert exported_through(conn, model) == datetime(2026, 9, 3, tzinfo=UTC)


def test_an_fsspec_url_gets_the_same_layout_and_no_temporary_file(engine: sa.Engine) -> None:
    model = unique_model("life/x y")  # a name that is not one path segment as it is
    seed(engine, model, per_day=30)
    url = f"memory://lake-{uuid.uuid4().hex[:8]}"
    report = run_scheduled_export(engine, settings_for(url), now=NOW, models=[model])
    assert [(d, n) for _, d, n in report.exported] == [(DAY1, 30), (DAY2, 30)]
    fs, root = fsspec.core.url_to_fs(url)
    folder = f"{root}/{model.replace('/', '%2F').replace(' ', '%20')}"
    assert sorted(fs.find(root)) == [
        f"{folder}/date=2026-09-01/predictions.parquet",
        f"{folder}/date=2026-09-02/predictions.parquet",
    ]
    with fs.open(f"{folder}/date=2026-09-02/predictions.parquet", "rb") as f:
        table = pq.read_table(f)
    assert table.num_rows == 30 and set(table.column("model_version").to_pylist()) == {"2"}
    with engine.connect() as conn:
        stmt = sa.text("SELECT location FROM day_exports WHERE model_name = :m ORDER BY day")
        locations = conn.execute(stmt, {"m": model}).scalars().all()
    assert locations == [fs.unstrip_protocol(f"{folder}/date={d}/predictions.parquet") for d in (DAY1, DAY2)]
    assert locations[0].startswith("memory://")


def test_a_failure_mid_export_leaves_no_complete_file_and_the_day_is_retried(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = unique_model()
    seed(engine, model)
    lake = tmp_path / "lake"
    settings = settings_for(str(lake))
    real, calls = export_module.chunk_table, []

    def failing(rows: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(rows)

    monkeypatch.setattr(export_module, "chunk_table", failing)
    monkeypatch.setattr(scheduled_export, "CHUNK_ROWS", 50)
    before = failures(model)
    report = run_scheduled_export(engine, settings, now=NOW, models=[model])
    assert report.exported == [] and [(d, e) for _, d, e in report.failed] == [(DAY1, "OSError: disk full")]
    assert failures(model) == before + 1
    assert list(lake.rglob("*.parquet")) == [] and list(lake.rglob(".*")) == []
    assert records(engine, model) == [("2026-09-01", "failed", 0, 1)]  # DAY2 waits for it

    monkeypatch.setattr(export_module, "chunk_table", real)
    report = run_scheduled_export(engine, settings, now=NOW, models=[model])
    assert [d for _, d, _ in report.exported] == [DAY1, DAY2]
    assert records(engine, model) == [("2026-09-01", "done", 120, 2), ("2026-09-02", "done", 120, 1)]
    assert pq.read_table(day_file(lake, model, DAY1)).num_rows == 120


CRASH = """
import os, sys
from datetime import datetime
from service.config import Settings
from service.db.engine import make_engine
from service.lifecycle import export, scheduled_export

real, calls = export.chunk_table, []
def crash(rows):
    calls.append(1)
    if len(calls) == 2:
        os._exit(17)  # the process dies mid-file: no cleanup runs
    return real(rows)
export.chunk_table = crash
scheduled_export.CHUNK_ROWS = 50
url, lake, model, now = sys.argv[1:]
scheduled_export.run_scheduled_export(
    make_engine(url), Settings(export_url=lake), now=datetime.fromisoformat(now), models=[model]
)
"""


def test_a_process_killed_mid_export_leaves_a_hidden_partial_the_retry_replaces(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    model = unique_model()
    seed(engine, model)
    lake = tmp_path / "lake"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", CRASH, database_url, str(lake), model, NOW.isoformat()]
    crashed = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert crashed.returncode == 17, crashed.stderr
    folder = day_file(lake, model, DAY1).parent
    partial = [p.name for p in folder.iterdir()]
    assert (
        len(partial) == 1 and partial[0].startswith(".predictions.parquet.") and partial[0].endswith(".tmp")
    )
    assert ds.dataset(lake / model, format="parquet", partitioning="hive").files == []  # readers skip it
    assert records(engine, model) == []

    report = run_scheduled_export(engine, settings_for(str(lake)), now=NOW, models=[model])
    assert [d for _, d, _ in report.exported] == [DAY1, DAY2]
    assert [p.name for p in folder.iterdir()] == ["predictions.parquet"]  # the partial is removed
    assert pq.read_table(day_file(lake, model, DAY1)).num_rows == 120


def test_an_unwritable_target_is_logged_counted_and_retried_without_stopping_the_scheduler(
    engine: sa.Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = unique_model()
    seed(engine, model, per_day=20)
    blocker = tmp_path / "receiver"
    blocker.write_text("a file where the lake's folder should be")
    settings = settings_for(str(blocker / "lake"), retention_days=1, retention_pause_ms=0)
    spec = JobSpec("export", lambda s, e: run_scheduled_export(e, s, now=NOW, models=[model]), 60)
    before = failures(model)
    for attempt in (1, 2):
        assert run_job(spec, settings, engine, f"holder-{attempt}") is True  # the job ran and returned
        assert failures(model) == before + attempt
        assert records(engine, model) == [("2026-09-01", "failed", 0, attempt)]
    assert "export of " + model in caplog.text and "retried next run" in caplog.text
    with engine.connect() as conn:
        assert export_floor(conn, settings, model) == EPOCH
    # retention keeps every row the export still owes the lake
    assert run_retention(engine, settings, now=NOW, models=[model]).deleted == 0

    blocker.unlink()  # the receiver is back
    assert run_job(spec, settings, engine, "holder-3") is True
    assert records(engine, model) == [("2026-09-01", "done", 20, 3), ("2026-09-02", "done", 20, 1)]
    assert failures(model) == before + 2
    # the exported days' unlabeled rows go (labeled ones are kept longer), today's stay
    assert run_retention(engine, settings, now=NOW, models=[model]).deleted == 26
    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).where(Prediction.model_name == model)).scalar_one()
    assert left == 14 + 2


def test_two_schedulers_export_each_day_once(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = unique_model()
    seed(engine, model, per_day=60)
    lake = tmp_path / "lake"
    settings = settings_for(str(lake))
    real = export_module.chunk_table

    def slow(rows: Any) -> Any:
        time.sleep(0.3)  # both schedulers are inside their run at once
        return real(rows)

    monkeypatch.setattr(export_module, "chunk_table", slow)
    monkeypatch.setattr(scheduled_export, "CHUNK_ROWS", 20)
    reports: list[Any] = []

    def job(s: Settings, e: sa.Engine) -> None:
        reports.append(run_scheduled_export(e, s, now=NOW, models=[model]))

    spec = JobSpec("scheduled-export", job, 60)
    start = threading.Barrier(2)
    ran: dict[str, bool] = {}

    def scheduler(holder: str) -> None:
        start.wait()
        ran[holder] = run_job(spec, settings, engine, holder)

    threads = [threading.Thread(target=scheduler, args=(h,)) for h in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(ran.values()) == [False, True]  # the lease let one of them run
    assert [d for _, d, _ in reports[0].exported] == [DAY1, DAY2]
    # the other scheduler's next tick finds nothing to do
    assert run_job(spec, settings, engine, "b") is True and reports[-1].exported == []
    assert records(engine, model) == [("2026-09-01", "done", 60, 1), ("2026-09-02", "done", 60, 1)]
    assert len(list(lake.rglob("*.parquet"))) == 2 and list(lake.rglob(".*")) == []


def test_the_scheduler_runs_the_export_only_when_a_target_is_set(tmp_path: Path) -> None:
    from service.monitor.sources import WatchedModels
    from service.scheduler import background_jobs

    engine = make_engine(f"sqlite:///{tmp_path / 'unused.db'}")
    for url, expected in (("", []), (str(tmp_path / "lake"), [("export", 7200.0)])):
        s = Settings(export_url=url, export_interval_seconds=7200)
        models = WatchedModels(engine, names=lambda: [], settings_for=lambda _n, s=s: s)
        jobs = [(j.name, j.seconds) for j in background_jobs(s, models, None) if j.name == "export"]
        assert jobs == expected
    engine.dispose()
