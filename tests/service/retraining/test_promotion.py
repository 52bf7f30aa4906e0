"""The promotion protocol under a crash at each step, against a real `mlflow server`, SQLite and PostgreSQL.

A crash is a BaseException raised from the registry (or the store) at step k: no handler records it, as
when the process dies. Recovery then runs, and the job row, the events and the aliases must tell what
MLflow did: exactly one `model.promoted` when the champion moved, else one `retrain.failed` with the
champion unchanged, the previous pointer intact and the challenger tagged orphaned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from retrain.errors import RegistryUnavailable
from retrain.registry import ModelVersionInfo, Registry
from service.config import Settings
from service.db.engine import make_engine
from service.retraining import promotion, queue, worker
from service.retraining.submit import submit
from tests.support.promotion import (
    Crash,
    aliases,
    crash_at,
    events_of,
    job_row,
    job_settings,
    queued_job,
)

Install = Callable[[pytest.MonkeyPatch, Registry], None]
GATE_TAGS = ("passed", "forced")
PROMOTED = {"retrain.started": 1, "retrain.succeeded": 1, "model.promoted": 1}
FAILED = {"retrain.started": 1, "retrain.failed": 1}
UNREACHABLE = RegistryUnavailable("MLflow at test is unreachable: connection reset")


def _alias_is(alias: str) -> Callable[..., bool]:
    return lambda _name, name_of_alias, _version: name_of_alias == alias


def _champion_moved(registry: Registry) -> Callable[..., bool]:
    def moved(name: str, version: str) -> bool:
        champion = registry.champion(name)
        return champion is not None and champion.version == version and version == "3"

    return moved


@dataclass(frozen=True)
class Point:
    id: str
    install: Install
    left: str  # the status the crash leaves
    promoted: bool
    challenger: bool = True  # the crash comes after the `challenger` alias moved


POINTS = [
    Point("after-register", lambda mp, r: crash_at(mp, r, "log_and_register", after=True), "running",
          False, challenger=False),
    Point("after-challenger-alias", lambda mp, r: crash_at(mp, r, "set_alias", when=_alias_is("challenger"),
          after=True), "running", False),
    Point("before-gate-tag", lambda mp, r: crash_at(
        mp, r, "tag_version", when=lambda _n, _v, tags: tags.get("validation_status") in GATE_TAGS),
        "running", False),
    Point("after-intent", lambda mp, r: crash_at(mp, r, "promote"), "promoting", False),
    Point("after-previous-moved", lambda mp, r: crash_at(
        mp, r, "set_alias", when=_alias_is("previous_champion"), after=True), "promoting", False),
    Point("after-champion-moved", lambda mp, r: crash_at(mp, r, "set_alias", when=_alias_is("champion"),
          after=True), "promoting", True),
    Point("in-get-version-after-move", lambda mp, r: crash_at(mp, r, "get_version", when=_champion_moved(r)),
          "promoting", True),
    Point("in-reference-store", lambda mp, r: crash_at(mp, promotion, "store_reference"), "promoting", True),
    Point("in-outbox-write", lambda mp, r: crash_at(
        mp, queue, "emit", when=lambda _s, **kw: kw["type"] == "model.promoted"), "promoting", True),
]  # fmt: skip


def _recover(
    engine: sa.Engine, settings: Settings, registry: Registry | None, older_than_seconds: float | None = 0
) -> int:
    """Recovery of this test's model; `older_than_seconds=0` treats every in-flight job as dead."""
    return worker.fail_stale(engine, settings=settings, registry=registry, model_name=settings.model_name,
                             older_than_seconds=older_than_seconds)  # fmt: skip


def _references(engine: sa.Engine, name: str) -> list[str]:
    with engine.connect() as conn:
        query = sa.text("SELECT model_version FROM reference_profiles WHERE model_name = :n")
        return list(conn.execute(query, {"n": name}).scalars())


def _data(event: Any) -> dict[str, Any]:
    return dict(orjson.loads(event.payload)["data"])


def _assert_promoted(engine: sa.Engine, registry: Registry, name: str, job_id: int) -> None:
    row = job_row(engine, job_id)
    assert (row.status, row.result_version, row.active_key) == ("succeeded", "3", None), row.error
    assert aliases(registry, name) == {"champion": "3", "previous_champion": "2", "challenger": "3"}
    events = events_of(engine, name)
    assert Counter(e.type for e in events) == PROMOTED
    (promoted,) = [e for e in events if e.type == "model.promoted"]
    assert promoted.model_version == "3" and _data(promoted)["previous_champion"] == "2"
    assert "3" in _references(engine, name)


def _assert_not_promoted(engine: sa.Engine, registry: Registry, name: str, job_id: int, point: Point) -> None:
    row = job_row(engine, job_id)
    assert (row.status, row.active_key) == ("failed", None)
    assert "champion unchanged (version 2)" in (row.error or ""), row.error
    expected = {"champion": "2", "previous_champion": "1"} | ({"challenger": "3"} if point.challenger else {})
    assert aliases(registry, name) == expected
    assert registry.get_version(name, "3").tags["validation_status"] == "orphaned"
    assert orjson.loads(row.details)["orphaned_versions"] == ["3"]
    events = events_of(engine, name)
    assert Counter(e.type for e in events) == FAILED
    assert _data(events[-1])["orphaned_versions"] == ["3"]


@pytest.mark.parametrize("point", POINTS, ids=[p.id for p in POINTS])
def test_a_crash_at_each_step_is_recovered_as_mlflow_says(
    point: Point, sqlite_url: str, server: Registry, template: ModelVersionInfo
) -> None:
    _crash_and_recover(point, sqlite_url, server, template)


#: the two crash points between the alias moves run in the normal suite on PostgreSQL too, all in `slow`
PG_FAST = ("after-previous-moved", "after-champion-moved")


@pytest.mark.postgres
@pytest.mark.parametrize(
    "point", [pytest.param(p, id=p.id, marks=() if p.id in PG_FAST else pytest.mark.slow) for p in POINTS]
)
def test_a_crash_at_each_step_is_recovered_as_mlflow_says_on_postgres(
    point: Point, pg_database: str, server: Registry, template: ModelVersionInfo
) -> None:
    _crash_and_recover(point, pg_database, server, template)


def _crash_and_recover(point: Point, url: str, server: Registry, template: ModelVersionInfo) -> None:
    engine = make_engine(url)
    name, job_id = queued_job(engine, server, template, "crash")
    settings = job_settings(url, name)
    with pytest.MonkeyPatch.context() as mp:
        point.install(mp, server)
        with pytest.raises(Crash):
            worker.run_next(engine, settings=settings, registry=server)
    left = job_row(engine, job_id)
    assert left.status == point.left and left.active_key == name
    if point.left == "promoting":  # the intent was committed before any alias moved
        intent = orjson.loads(left.details)["promotion"]
        assert intent == {"expected_champion": "2", "challenger": "3", "previous_champion": "1"}
    assert not submit(engine, model_name=name, trigger="manual", reason="beside it").created
    # a fresh heartbeat keeps recovery away; once it is stale (the worker is dead), recovery decides
    assert _recover(engine, settings, server, older_than_seconds=None) == 0
    assert _recover(engine, settings, server) == 1
    if point.promoted:
        _assert_promoted(engine, server, name, job_id)
    else:
        _assert_not_promoted(engine, server, name, job_id, point)
    # recovery is idempotent, and the model is free for the next job
    assert _recover(engine, settings, server) == 0
    assert len(events_of(engine, name)) == (3 if point.promoted else 2)
    assert submit(engine, model_name=name, trigger="manual", reason="next").created


def test_an_mlflow_error_after_the_champion_moved_is_a_promotion(
    database_url_slow_pg: str, server: Registry, template: ModelVersionInfo
) -> None:
    engine = make_engine(database_url_slow_pg)
    name, job_id = queued_job(engine, server, template, "crash")
    with pytest.MonkeyPatch.context() as mp:
        crash_at(mp, server, "get_version", when=_champion_moved(server), error=UNREACHABLE)
        done = worker.run_next(engine, settings=job_settings(database_url_slow_pg, name), registry=server)
    assert done is not None and done.id == job_id
    assert "champion unchanged" not in (done.error or "")
    _assert_promoted(engine, server, name, job_id)


def test_an_mlflow_error_before_the_champion_moved_keeps_the_previous_pointer(
    database_url_slow_pg: str, server: Registry, template: ModelVersionInfo
) -> None:
    engine = make_engine(database_url_slow_pg)
    name, _ = queued_job(engine, server, template, "crash")
    with pytest.MonkeyPatch.context() as mp:
        crash_at(mp, server, "set_alias", when=_alias_is("champion"), error=UNREACHABLE)
        done = worker.run_next(engine, settings=job_settings(database_url_slow_pg, name), registry=server)
    assert done is not None and done.status == "failed"
    assert "promotion interrupted" in (done.error or "")
    assert "champion unchanged (version 2)" in (done.error or "")
    assert aliases(server, name) == {"champion": "2", "previous_champion": "1", "challenger": "3"}
    assert Counter(e.type for e in events_of(engine, name)) == FAILED


def test_a_promoting_job_whose_registry_is_unreachable_waits_for_it(
    sqlite_url: str, server: Registry, template: ModelVersionInfo
) -> None:
    engine = make_engine(sqlite_url)
    name, job_id = queued_job(engine, server, template, "crash")
    settings = job_settings(sqlite_url, name)
    with pytest.MonkeyPatch.context() as mp:
        crash_at(mp, server, "promote")
        with pytest.raises(Crash):
            worker.run_next(engine, settings=settings, registry=server)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mp.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
        assert _recover(engine, settings, Registry("http://127.0.0.1:9")) == 0
        assert _recover(engine, settings, None) == 0
    assert job_row(engine, job_id).status == "promoting"  # no guess: MLflow alone knows
    assert _recover(engine, settings, server) == 1
    assert job_row(engine, job_id).status == "failed"


def test_the_job_row_of_a_recovered_promotion_keeps_its_intent(
    sqlite_url: str, server: Registry, template: ModelVersionInfo
) -> None:
    engine = make_engine(sqlite_url)
    name, job_id = queued_job(engine, server, template, "crash")
    settings = job_settings(sqlite_url, name)
    with pytest.MonkeyPatch.context() as mp:
        crash_at(mp, server, "set_alias", when=_alias_is("champion"), after=True)
        with pytest.raises(Crash):
            worker.run_next(engine, settings=settings, registry=server)
    assert _recover(engine, settings, server) == 1
    with Session(engine) as session:
        row = queue.promoting_job(session, name)
    assert row is None
    details = orjson.loads(job_row(engine, job_id).details)
    assert details["promotion"]["challenger"] == "3" and "recovery" in details["reason"]
