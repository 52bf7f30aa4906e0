"""Recovery never touches a live job; a job it closed never promotes and is never rewritten (real
`mlflow server`)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from retrain.registry import ModelVersionInfo, Registry
from service.config import Settings
from service.db.engine import make_engine
from service.db.tables import RetrainJob, utcnow
from service.retraining import worker
from service.retraining.heartbeat import Heartbeat
from service.retraining.submit import submit
from tests.support.promotion import aliases, events_of, job_row, job_settings, queued_job, unique

PROMOTED = {"retrain.started": 1, "retrain.succeeded": 1, "model.promoted": 1}


def _frozen_then_recovered(
    engine: sa.Engine, settings: Settings, registry: Registry, job_id: int
) -> tuple[Callable[[], None], list[int]]:
    """The worker freezes (its last beat an hour back) and recovery runs: the action, and the list of how
    many jobs each recovery ended."""
    recovered: list[int] = []

    def action() -> None:
        with Session(engine) as session:
            row = session.get(RetrainJob, job_id)
            assert row is not None
            row.heartbeat_at = utcnow() - timedelta(hours=1)
            session.add(row)
            session.commit()
        recovered.append(
            worker.fail_stale(engine, settings=settings, registry=registry, model_name=settings.model_name)
        )

    return action, recovered


def _on_challenger_alias(monkeypatch: pytest.MonkeyPatch, registry: Registry, action: Any) -> None:
    """Run `action()` once the job has set its `challenger` alias (registered, evaluated, not promoted)."""
    real = registry.set_alias

    def set_alias(name: str, alias: str, version: str) -> None:
        real(name, alias, version)
        if alias == "challenger":
            action()

    monkeypatch.setattr(registry, "set_alias", set_alias)


def test_a_live_job_slower_than_the_stale_limit_is_never_failed(
    database_url_slow_pg: str, server: Registry, template: ModelVersionInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(database_url_slow_pg)
    name, job_id = queued_job(engine, server, template, "recovery")
    # 1.2 s; a beat every 0.24 s
    settings = job_settings(database_url_slow_pg, name, retrain_stale_minutes=0.02)
    recovered: list[int] = []

    def slow_step_then_recovery() -> None:
        time.sleep(2.0)  # longer than the stale limit: only the heartbeat says the worker lives
        recovered.append(worker.fail_stale(engine, settings=settings, registry=server, model_name=name))

    _on_challenger_alias(monkeypatch, server, slow_step_then_recovery)
    done = worker.run_next(engine, settings=settings, registry=server)
    assert recovered == [0]
    assert done is not None and done.status == "succeeded" and done.id == job_id, done and done.error
    assert Counter(e.type for e in events_of(engine, name)) == PROMOTED
    assert aliases(server, name)["champion"] == "3"


def test_a_job_recovery_closed_never_promotes(
    sqlite_url: str, server: Registry, template: ModelVersionInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker froze longer than the stale limit (no beats), recovery failed its job; when it wakes
    up it must not move an alias: its intent is refused."""
    engine = make_engine(sqlite_url)
    name, job_id = queued_job(engine, server, template, "recovery")
    settings = job_settings(sqlite_url, name)
    frozen_then_recovered, recovered = _frozen_then_recovered(engine, settings, server, job_id)
    _on_challenger_alias(monkeypatch, server, frozen_then_recovered)
    done = worker.run_next(engine, settings=settings, registry=server)
    assert recovered == [1]
    assert done is not None and done.status == "failed" and "worker stopped" in (done.error or "")
    assert aliases(server, name) == {"champion": "2", "previous_champion": "1", "challenger": "3"}
    assert server.get_version(name, "3").tags["validation_status"] == "orphaned"
    assert Counter(e.type for e in events_of(engine, name)) == {"retrain.started": 1, "retrain.failed": 1}


def test_the_heartbeat_renews_a_job_in_flight_and_stops_when_it_ends(database_url: str) -> None:
    engine = make_engine(database_url)
    name = unique("beat")
    job = submit(engine, model_name=name, trigger="manual", reason="beat").job
    long_ago = utcnow() - timedelta(hours=1)
    with Session(engine) as session:
        row = session.get(RetrainJob, job.id)
        assert row is not None
        row.status, row.started_at, row.heartbeat_at = "running", long_ago, long_ago
        session.add(row)
        session.commit()
    assert job.id is not None
    settings = job_settings(database_url, name)
    with Heartbeat(engine, job.id, interval=0.05) as beat:
        time.sleep(0.5)
        fresh = job_row(engine, job.id).heartbeat_at
        assert fresh is not None and fresh > utcnow() - timedelta(seconds=5)
        assert worker.fail_stale(engine, settings=settings, model_name=name, older_than_seconds=60) == 0
    assert not beat.lost
    # once beats stop, the job goes stale and recovery (here without a registry) ends it
    assert worker.fail_stale(engine, settings=settings, model_name=name, older_than_seconds=0) == 1
    ended = job_row(engine, job.id)
    assert ended.status == "failed" and "before any promotion" in (ended.error or "")
    with Heartbeat(engine, job.id, interval=0.05) as beat:
        time.sleep(0.3)
    assert beat.lost  # a job no longer in flight is not renewed


def test_a_job_recovery_closed_is_never_rewritten_by_its_late_worker(
    database_url_slow_pg: str, server: Registry, template: ModelVersionInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The frozen worker wakes up after recovery failed its job and reaches its own end (here a rejection,
    which needs no intent): the end is a compare-and-set on `running`, so the recorded failure stands
    with its one `retrain.failed`, and no `model.rejected` follows it."""
    url = database_url_slow_pg
    engine = make_engine(url)
    name, job_id = queued_job(engine, server, template, "rewrite", force=False)
    settings = job_settings(url, name, retrain_margin=1.0)  # no challenger beats the champion by 1.0
    frozen_then_recovered, recovered = _frozen_then_recovered(engine, settings, server, job_id)
    _on_challenger_alias(monkeypatch, server, frozen_then_recovered)
    done = worker.run_next(engine, settings=settings, registry=server)
    assert recovered == [1]
    assert done is not None and done.id == job_id
    row = job_row(engine, job_id)
    assert (row.status, row.active_key) == ("failed", None) and "worker stopped" in (row.error or "")
    assert Counter(e.type for e in events_of(engine, name)) == {"retrain.started": 1, "retrain.failed": 1}
    assert aliases(server, name)["champion"] == "2"


def test_a_move_after_recovery_ended_the_job_is_put_back(
    sqlite_url: str, server: Registry, template: ModelVersionInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: the worker stalls between its intent and the move longer than its champion lease and its
    heartbeat; recovery takes the lapsed lease and ends the job as not promoted (the champion is still
    the expected one). When the worker resumes and moves the aliases, its end is refused, and it puts
    them back to what the record says: champion 2, previous_champion 1."""
    engine = make_engine(sqlite_url)
    name, job_id = queued_job(engine, server, template, "recovery")
    settings = job_settings(sqlite_url, name)
    real = server.promote
    recovered: list[int] = []

    def stalled_then_promote(*args: Any, **kwargs: Any) -> Any:
        with engine.begin() as conn:  # the stall: the lease and the heartbeat lapse
            past = utcnow() - timedelta(hours=1)
            conn.execute(sa.text("UPDATE leases SET expires_at = :t WHERE name = :n"),
                         {"t": past, "n": f"champion:{name}"})  # fmt: skip
            conn.execute(
                sa.text("UPDATE retrain_jobs SET heartbeat_at = :t WHERE id = :i"), {"t": past, "i": job_id}
            )
        recovered.append(worker.fail_stale(engine, settings=settings, registry=server, model_name=name))
        return real(*args, **kwargs)

    monkeypatch.setattr(server, "promote", stalled_then_promote)
    done = worker.run_next(engine, settings=settings, registry=server)
    assert recovered == [1]
    assert done is not None and (done.status, done.id) == ("failed", job_id)
    assert "champion unchanged (version 2)" in (done.error or "")
    assert aliases(server, name) == {"champion": "2", "previous_champion": "1", "challenger": "3"}
    assert server.get_version(name, "3").tags["validation_status"] == "orphaned"
    assert Counter(e.type for e in events_of(engine, name)) == {"retrain.started": 1, "retrain.failed": 1}
