"""One scheduler for every watched model (service/scheduler.py): each model's checks with its own settings,
under its own lease, the model list read at every tick, and a slow model never starving the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sklearn.pipeline import Pipeline

from retrain.synthetic import DriftPlan
from service import scheduler as sched
from service.config import Settings
from service.db.engine import make_engine
from service.db.leases import hold_lease
from service.monitor.sources import WatchedModels, registry_models
from service.serving.fleet import UnknownModel
from tests.support.core import FakeRegistry
from tests.support.monitor import add_reference, log_traffic, settings, unique_model


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def runs_of(engine: sa.Engine, model: str) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT n_rows, status FROM drift_runs WHERE model_name = :m AND kind = 'drift' "
                "ORDER BY window_start"
            ),
            {"m": model},
        ).all()
    return [(int(r[0]), str(r[1])) for r in rows]


def watched(
    engine: sa.Engine,
    by_name: dict[str, Settings],
    champion: Callable[[str], str | None] = lambda _: "1",
) -> WatchedModels:
    def settings_for(name: str) -> Settings:
        if name not in by_name:
            raise UnknownModel(name, by_name)
        return by_name[name]

    return WatchedModels(
        engine, names=lambda: list(by_name), settings_for=settings_for, champion_version=champion
    )


def drift_job(s: Settings, models: WatchedModels, engine: sa.Engine) -> sched.PerModelJob:
    (spec,) = [j for j in sched.background_jobs(s, models, None) if j.name == "drift-check"]
    return sched.PerModelJob(spec, s, engine, "test-holder")


def ran(job: sched.PerModelJob) -> dict[str, bool]:
    """One tick, waited out: whether each model's run ran (False: leased elsewhere or unwatched)."""
    return {m: f.result(timeout=60) for m, f in job.tick().items()}


def test_each_model_is_checked_with_its_own_window(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    a, b = unique_model(), unique_model()
    by_name = {a: settings(database_url, a, window_rows=1000), b: settings(database_url, b, window_rows=400)}
    for model in (a, b):
        add_reference(engine, model)
        log_traffic(engine, demo_estimator, n_rows=1200, offset=0, model=model)
    job = drift_job(by_name[a], watched(engine, by_name), engine)
    try:
        started = job.tick()
        assert set(started) == {a, b} and all(f.result(timeout=60) for f in started.values())
    finally:
        job.close()
    assert runs_of(engine, a) == [(1000, "no_drift")]  # one window of 1000, 200 rows left for later
    assert runs_of(engine, b) == [(400, "no_drift")] * 3


def test_a_slow_model_is_skipped_while_in_flight_and_the_others_keep_being_checked(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    fast, other, slow = unique_model(), unique_model(), unique_model()
    by_name = {
        m: settings(database_url, m, window_rows=500, drift_check_interval=0.2) for m in (fast, other, slow)
    }
    for model in by_name:
        add_reference(engine, model)
    release, entered = threading.Event(), []

    def champion(name: str) -> str:
        if name == slow:  # a registry that hangs for this model only
            entered.append(name)
            release.wait(60)
        return "1"

    job = drift_job(by_name[fast], watched(engine, by_name, champion), engine)
    try:
        for block in range(3):  # traffic arrives, a tick checks it, for every model but the slow one
            for model in by_name:
                log_traffic(engine, demo_estimator, n_rows=500, offset=block * 500, model=model)
            t0 = time.monotonic()
            started = job.tick()
            assert time.monotonic() - t0 < 5  # a tick starts runs, it never waits for the slow one
            assert set(started) == ({fast, other, slow} if block == 0 else {fast, other})
            for model in (fast, other):
                assert started[model].result(timeout=60) is True
                assert len(runs_of(engine, model)) == block + 1, (block, model)
            assert runs_of(engine, slow) == [] and job.in_flight == {slow}
        assert entered == [slow]  # never started twice while in flight
        release.set()
        deadline = time.monotonic() + 60
        while job.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.in_flight == set()
        job.tick()[slow].result(timeout=60)
        assert len(runs_of(engine, slow)) == 3  # its backlog is checked once it answers
    finally:
        release.set()
        job.close()


def test_one_model_failing_or_leased_elsewhere_does_not_stop_the_others(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    good, broken, leased = unique_model(), unique_model(), unique_model()
    by_name = {m: settings(database_url, m, window_rows=500) for m in (good, broken, leased)}
    for model in (good, leased):
        add_reference(engine, model)
    for model in by_name:
        log_traffic(engine, demo_estimator, n_rows=500, offset=0, model=model)

    def champion(name: str) -> str:
        if name == broken:
            raise RuntimeError("boom")  # the monitor falls back to the latest served version
        return "1"

    job = drift_job(by_name[good], watched(engine, by_name, champion), engine)
    try:
        with hold_lease(engine, f"job:drift-check:{leased}", "another-scheduler", 30) as got:
            assert got
            started = job.tick()
            results = {m: f.result(timeout=60) for m, f in started.items()}
        assert results == {good: True, broken: True, leased: False}
        assert runs_of(engine, good) == [(500, "no_drift")]
        assert runs_of(engine, broken) == [(500, "no_reference")]
        assert runs_of(engine, leased) == []  # the other scheduler's
        assert job.tick()[leased].result(timeout=60) is True  # the lease is free again
        assert runs_of(engine, leased) == [(500, "no_drift")]
    finally:
        job.close()


def test_the_model_list_is_read_at_every_tick(
    engine: sa.Engine, database_url: str, demo_estimator: Pipeline
) -> None:
    first, added = unique_model(), unique_model()
    by_name = {first: settings(database_url, first, window_rows=500)}
    for model in (first, added):
        add_reference(engine, model)
        log_traffic(engine, demo_estimator, n_rows=1000, offset=0, model=model)
    models = watched(engine, by_name)
    job = drift_job(by_name[first], models, engine)
    try:
        assert ran(job) == {first: True}
        by_name[added] = settings(database_url, added, window_rows=500)  # the watch API adds one
        assert ran(job) == {first: True, added: True}
        assert len(runs_of(engine, added)) == 2
        del by_name[first]  # ... and removes one
        assert ran(job) == {added: True}
        assert set(models._monitors) == {added}  # the unwatched model's monitor is dropped
    finally:
        job.close()


def test_models_take_turns_when_the_pool_is_full(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sched, "MODEL_WORKERS", 1)
    engine = make_engine(sqlite_url)
    names = ["m0", "m1", "m2"]
    s = settings(sqlite_url)
    order: list[str] = []
    models = WatchedModels(
        engine, names=lambda: names, settings_for=lambda n: s.model_copy(update={"model_name": n})
    )
    spec = sched.JobSpec("probe", lambda ms, _e: order.append(ms.model_name), 5.0, models=models)
    job = sched.PerModelJob(spec, s, engine, "test-holder")
    try:
        firsts = []
        for _ in range(3):
            for future in job.tick().values():
                future.result(timeout=10)
            firsts.append(order[-3])
    finally:
        job.close()
        engine.dispose()
    assert sorted(firsts) == names  # each model is first once in three ticks
    assert sorted(order) == sorted(names * 3)


def test_a_drift_episode_on_one_model_leaves_the_others_untouched(
    sqlite_url: str, demo_estimator: Pipeline
) -> None:
    engine = make_engine(sqlite_url)
    calm, drifting = unique_model(), unique_model()
    by_name = {m: settings(sqlite_url, m, window_rows=1000, breach_k=2, breach_m=3) for m in (calm, drifting)}
    plan = DriftPlan(covariate_at=1000)
    for model in by_name:
        add_reference(engine, model)
        for block in range(4):
            drift = plan if model == drifting else None
            log_traffic(engine, demo_estimator, n_rows=1000, offset=block * 1000, drift=drift, model=model)
    job = drift_job(by_name[calm], watched(engine, by_name), engine)
    try:
        for future in job.tick().values():
            future.result(timeout=120)
    finally:
        job.close()
    with engine.connect() as conn:
        episodes = conn.execute(sa.text("SELECT model_name, kind, status FROM episodes")).all()
        events = conn.execute(sa.text("SELECT model_name, type FROM events")).all()
    engine.dispose()
    assert [tuple(e) for e in episodes] == [(drifting, "drift", "open")]
    assert [tuple(e) for e in events] == [(drifting, "drift.detected")]
    assert [s for _, s in runs_of_url(sqlite_url, calm)] == ["no_drift"] * 4


def runs_of_url(url: str, model: str) -> list[tuple[int, str]]:
    engine = make_engine(url)
    try:
        return runs_of(engine, model)
    finally:
        engine.dispose()


def test_the_standalone_scheduler_watches_the_same_models_as_the_api(
    database_url: str, tmp_path: Path, fake_registry: FakeRegistry
) -> None:
    from sqlmodel import Session

    from service.serving.watched import add_watch, remove_watch

    default, extra, in_file, added = (unique_model() for _ in range(4))
    (tmp_path / "models.toml").write_text(f'[models."{in_file}"]\nwindow_rows = 300\nbreach_k = 1\n')
    s = settings(database_url, default, models=extra, models_file=str(tmp_path / "models.toml"))
    engine = make_engine(database_url)
    models = registry_models(s, engine, fake_registry)  # type: ignore[arg-type]
    assert models.names()[:3] == (default, extra, in_file)
    with Session(engine) as session:  # PUT /v1/models/{name}/watch from an API process
        add_watch(session, added)
        session.commit()
    assert models.names()[:3] == (default, extra, in_file) and added in models.names()
    assert (models.settings_for(in_file).window_rows, models.settings_for(in_file).breach_k) == (300, 1)
    watched_at_run_time = models.settings_for(added)
    assert (watched_at_run_time.model_name, watched_at_run_time.window_rows) == (added, s.window_rows)
    with Session(engine) as session:
        remove_watch(session, added)
        session.commit()
    assert added not in models.names()
    engine.dispose()


def test_the_embedded_scheduler_checks_a_model_watched_at_run_time(
    database_url: str, tmp_path: Path, demo_estimator: Pipeline
) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from tests.support.models import FakeRegistries

    default, added = unique_model(), unique_model()
    registries = FakeRegistries({default: ({"1": demo_estimator}, "1"), added: ({"1": demo_estimator}, "1")})
    engine = make_engine(database_url)
    for model in (default, added):
        add_reference(engine, model)
        log_traffic(engine, demo_estimator, n_rows=500, offset=0, model=model)
    s = settings(
        database_url, default, window_rows=500, data_dir=tmp_path, admin_token="adm1n-token-0123",
        model_poll_seconds=0.1, drift_check_interval=0.2, estimated_performance=False,
        retention_days=0, labeled_retention_days=0,  # the logged rows are dated months ago: keep them
    )  # fmt: skip
    app = create_app(
        s, loader=(registries.resolve, registries.fetch), model_exists=registries.has_model,
        extras=(sched.embedded_scheduler,),
    )  # fmt: skip
    try:
        with TestClient(app) as client:
            deadline = time.monotonic() + 60
            while not runs_of(engine, default) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert runs_of(engine, default) == [(500, "no_drift")]
            time.sleep(0.6)  # three more ticks: the unwatched model is not checked
            assert runs_of(engine, added) == []
            r = client.put(f"/v1/models/{added}/watch", headers={"Authorization": "Bearer adm1n-token-0123"})
            assert r.status_code == 201, r.text
            while not runs_of(engine, added) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert runs_of(engine, added) == [(500, "no_drift")]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM watched_models WHERE name = :n"), {"n": added})
        engine.dispose()
