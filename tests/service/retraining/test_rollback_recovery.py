"""A rollback whose process dies mid-way is ended by the truth: finished or undone, one event at most
(real `mlflow server`; a crash is an exception no handler catches, at a chosen step)."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from retrain.errors import ChampionChanged
from retrain.registry import ModelVersionInfo, Registry
from service.db.engine import make_engine
from service.db.rollback_tables import ChampionRollback
from service.db.tables import AutomationState
from service.retraining import rollback as rollback_module
from service.retraining import worker
from service.retraining.champion_lease import champion_lease
from service.retraining.rollback import RolledBack, rollback
from tests.support.promotion import Crash, aliases, crash_at, events_of, job_settings, seed_champion, unique


def _intents(engine: sa.Engine, name: str) -> list[tuple[str | None, str, str]]:
    with Session(engine) as session:
        stmt = select(ChampionRollback).where(ChampionRollback.model_name == name)
        rows = session.exec(stmt.order_by(col(ChampionRollback.id))).all()
        return [(r.from_version, r.to_version, r.state) for r in rows]


def _paused(engine: sa.Engine, name: str) -> bool:
    with Session(engine) as session:
        row = session.get(AutomationState, name)
        return row is not None and row.state == "paused"


def _recover(engine: sa.Engine, name: str, url: str, server: Registry) -> int:
    settings = job_settings(url, name)
    return worker.fail_stale(
        engine, settings=settings, registry=server, model_name=name, older_than_seconds=0
    )


def test_a_crash_between_the_two_alias_moves_is_finished_by_recovery(
    database_url: str, server: Registry, template: ModelVersionInfo
) -> None:
    engine = make_engine(database_url)
    name = unique("rb-crash")
    seed_champion(server, template, name)  # champion 2, previous_champion 1
    with pytest.MonkeyPatch.context() as mp:
        crash_at(mp, server, "set_alias", when=lambda _n, alias, _v: alias == "previous_champion")
        with pytest.raises(Crash):
            rollback(engine, server, job_settings(database_url, name))
    # champion moved, the pointer to version 2 is not written yet; nothing says it happened
    assert aliases(server, name) == {"champion": "1", "previous_champion": "1"}
    assert _intents(engine, name) == [("2", "1", "moving")] and events_of(engine, name) == []
    assert _recover(engine, name, database_url, server) == 1
    assert aliases(server, name) == {"champion": "1", "previous_champion": "2"}  # the second move, done
    assert _intents(engine, name) == [("2", "1", "rolled_back")]
    (event,) = events_of(engine, name)
    assert (event.type, event.model_version) == ("model.rolled_back", "1")
    assert _paused(engine, name)
    assert _recover(engine, name, database_url, server) == 0  # ended once
    assert len(events_of(engine, name)) == 1
    engine.dispose()


def test_a_crash_before_the_champion_moved_is_undone(
    database_url: str, server: Registry, template: ModelVersionInfo
) -> None:
    engine = make_engine(database_url)
    name = unique("rb-before")
    seed_champion(server, template, name)
    with pytest.MonkeyPatch.context() as mp:
        crash_at(mp, server, "set_alias", when=lambda _n, alias, _v: alias == "champion")
        with pytest.raises(Crash):
            rollback(engine, server, job_settings(database_url, name))
    assert _intents(engine, name) == [("2", "1", "moving")]
    assert _recover(engine, name, database_url, server) == 1
    assert aliases(server, name) == {"champion": "2", "previous_champion": "1"}  # nothing moved
    assert _intents(engine, name) == [("2", "1", "undone")]
    assert events_of(engine, name) == [] and not _paused(engine, name)
    engine.dispose()


def test_a_rollback_that_died_before_its_end_is_finished_by_the_next_one(
    sqlite_url: str, server: Registry, template: ModelVersionInfo
) -> None:
    """Both aliases moved, the end never committed; the operator retries with the champion it saw: the
    first rollback is recorded (one event) and the retry is refused, nothing moves back."""
    engine = make_engine(sqlite_url)
    name = unique("rb-end")
    seed_champion(server, template, name)
    settings = job_settings(sqlite_url, name)
    with pytest.MonkeyPatch.context() as mp:
        crash_at(mp, rollback_module, "emit")
        with pytest.raises(Crash):
            rollback(engine, server, settings)
    assert aliases(server, name) == {"champion": "1", "previous_champion": "2"}
    assert _intents(engine, name) == [("2", "1", "moving")] and events_of(engine, name) == []
    with pytest.raises(ChampionChanged, match="champion is version 1, not the expected version 2"):
        rollback(engine, server, settings, expected_champion="2")
    assert _intents(engine, name) == [("2", "1", "rolled_back")]
    assert [e.type for e in events_of(engine, name)] == ["model.rolled_back"]
    assert aliases(server, name) == {"champion": "1", "previous_champion": "2"}
    assert rollback(engine, server, settings, expected_champion="1") == RolledBack("2", "1")  # a new one
    assert [s for _, _, s in _intents(engine, name)] == ["rolled_back", "rolled_back"]
    engine.dispose()


def test_the_sqlite_champion_lease_is_renewed_while_held(sqlite_url: str) -> None:
    """Held for three times its duration: no other actor takes it meanwhile; released, it is free."""
    engine = make_engine(sqlite_url)
    name = unique("lease")
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with champion_lease(engine, name, seconds=0.6, wait=0) as held:
            assert held
            taken.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    assert taken.wait(30)
    deadline = time.monotonic() + 1.8
    while time.monotonic() < deadline:
        with champion_lease(engine, name, seconds=0.6, wait=0) as other:
            assert not other, "the champion lease lapsed while its holder was still moving aliases"
        time.sleep(0.1)
    release.set()
    t.join(30)
    with champion_lease(engine, name, seconds=0.6, wait=0) as after:
        assert after
    engine.dispose()
