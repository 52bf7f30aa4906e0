from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa
from sklearn.pipeline import Pipeline

from retrain.synthetic import DriftPlan
from service import scheduler as sched
from service.db.engine import make_engine
from service.db.leases import hold_lease
from service.monitor import Monitor
from service.monitor.sources import WatchedModels
from tests.support.monitor import add_reference, log_traffic, settings, unique_model
from tests.support.schedulers import OverlapProbe, two_schedulers, wait_until


def _count(engine: sa.Engine, sql: str, model: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), {"m": model}).scalar_one())


def test_two_schedulers_over_one_postgres_store_each_run_once(
    pg_database: str, demo_estimator: Pipeline
) -> None:
    model = unique_model()
    setup = make_engine(pg_database)
    add_reference(setup, model)
    plan = DriftPlan(covariate_at=2000)
    for block in range(4):
        log_traffic(setup, demo_estimator, n_rows=1000, offset=block * 1000, drift=plan, model=model)
    s = settings(pg_database, model, drift_check_interval=0.2, breach_m=4, breach_k=2)
    probe = OverlapProbe(0.3)  # longer than the interval: the other scheduler finds the lease taken

    def jobs(engine: sa.Engine) -> list[sched.JobSpec]:  # the checks and the probe
        models = WatchedModels(engine, names=lambda: [model], settings_for=lambda _: s,
                               champion_version=lambda _: "1")  # fmt: skip
        return [*sched.background_jobs(s, models, None)[:2], sched.JobSpec(f"probe-{model}", probe, 0.2)]

    runs = "SELECT count(*) FROM drift_runs WHERE model_name = :m AND kind = 'drift'"
    with two_schedulers(pg_database, s, jobs):
        wait_until(lambda: _count(setup, runs, model), 4)
    assert _count(setup, runs, model) == 4
    keys = "SELECT count(DISTINCT window_key) FROM drift_runs WHERE model_name = :m"
    assert _count(setup, keys, model) == _count(
        setup, "SELECT count(*) FROM drift_runs WHERE model_name = :m", model
    )
    assert _count(setup, "SELECT count(*) FROM episodes WHERE model_name = :m", model) == 1
    assert _count(setup, "SELECT count(*) FROM events WHERE model_name = :m", model) == 1
    # the probe ran repeatedly and never twice at once (each call records how many bodies were running)
    assert len(probe.calls) >= 3
    assert max(probe.calls) == 1, f"two schedulers ran the probe at once: {probe.calls}"
    setup.dispose()


def test_two_schedulers_on_sqlite_keep_a_lease_shorter_than_a_run(sqlite_url: str) -> None:
    s = settings(sqlite_url, lease_seconds=0.3)
    probe = OverlapProbe(1.0)  # three lease lifetimes: only renewal keeps the other scheduler out
    with two_schedulers(sqlite_url, s, lambda _engine: [sched.JobSpec("probe", probe, 0.1)]):
        time.sleep(3.5)
    assert len(probe.calls) >= 3
    assert max(probe.calls) == 1, f"two schedulers ran the probe at once: {probe.calls}"


def test_two_schedulers_on_sqlite_check_each_window_once_with_a_lease_shorter_than_a_check(
    sqlite_url: str, demo_estimator: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real drift check, each window taking longer than the lease: only its renewal keeps the other
    scheduler from computing a window the first one is still checking."""
    model = unique_model()
    setup = make_engine(sqlite_url)
    add_reference(setup, model)
    for block in range(3):
        log_traffic(setup, demo_estimator, n_rows=1000, offset=block * 1000, model=model)
    s = settings(sqlite_url, model, drift_check_interval=0.1, lease_seconds=0.3)
    checked: list[str] = []
    real = Monitor.check

    def slow_check(self: Monitor, window: Any, *, trigger: str) -> Any:
        checked.append(window.key)
        time.sleep(0.6)  # two lease lifetimes per window
        return real(self, window, trigger=trigger)

    monkeypatch.setattr(Monitor, "check", slow_check)

    def drift_check(engine: sa.Engine) -> list[sched.JobSpec]:  # each its own monitor (own frontiers)
        models = WatchedModels(engine, names=lambda: [model], settings_for=lambda _: s,
                               champion_version=lambda _: "1")  # fmt: skip
        return sched.background_jobs(s, models, None)[:1]

    runs = "SELECT count(*) FROM drift_runs WHERE model_name = :m AND kind = 'drift'"
    with two_schedulers(sqlite_url, s, drift_check):
        wait_until(lambda: _count(setup, runs, model), 3)
    assert _count(setup, runs, model) == 3
    assert len(checked) == 3 and len(set(checked)) == 3, f"a window was computed twice: {checked}"
    setup.dispose()


def test_job_skips_when_another_holds_its_lease(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    s = settings(sqlite_url)
    ran: list[int] = []
    spec = sched.JobSpec("probe", lambda _s, _e: ran.append(1), 1.0)
    with hold_lease(engine, "job:probe", "someone-else", 30) as got:
        assert got
        assert sched.run_job(spec, s, engine, "me") is False
    assert sched.run_job(spec, s, engine, "me") is True
    assert ran == [1]

    def boom(_s: object, _e: object) -> None:
        raise RuntimeError("job failed")

    assert sched.run_job(sched.JobSpec("boom", boom, 1.0), s, engine, "me") is False  # logged, not raised
    engine.dispose()


def test_background_jobs_are_one_list_and_every_scheduler_runs_them(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    s = settings(sqlite_url)
    models = WatchedModels(engine, names=lambda: ["demo"], settings_for=lambda _: s)
    without_registry = {spec.name for spec in sched.background_jobs(s, models, None)}
    assert without_registry == {
        "drift-check", "performance-check", "webhook-dispatcher", "retrain-trigger", "retention"
    }  # fmt: skip
    jobs = sched.background_jobs(s, models, object())  # type: ignore[arg-type]  # never called here
    assert {spec.name for spec in jobs} == without_registry | {"retrain-worker"}
    scheduler = sched.build_scheduler(s, engine, jobs)
    scheduler.start(paused=True)
    assert {job.id for job in scheduler.get_jobs()} == without_registry | {"retrain-worker"}
    job = scheduler.get_job("drift-check")
    assert job is not None and job.coalesce and job.max_instances == 1
    scheduler.shutdown(wait=False)
    with pytest.raises(ValueError, match="positive"):
        sched.JobSpec("bad", lambda _s, _e: None, 0)
    with pytest.raises(ValueError, match="unique"):
        sched.build_scheduler(s, engine, [jobs[0], jobs[0]])
    engine.dispose()
