"""Rollback is compare-and-set on the champion under the champion lease (real `mlflow server`)."""

from __future__ import annotations

import threading
from collections import Counter

import orjson
import pytest
import sqlalchemy as sa

from retrain.errors import ChampionChanged, NoPreviousChampion
from retrain.registry import ModelVersionInfo, Registry
from service.db.engine import make_engine
from service.retraining import worker
from service.retraining.champion_lease import ChampionBusy
from service.retraining.rollback import RolledBack, rollback
from service.retraining.submit import submit
from tests.support.promotion import (
    Crash,
    aliases,
    crash_at,
    events_of,
    job_settings,
    log_labeled,
    seed_champion,
    unique,
)


def _model(engine: sa.Engine, registry: Registry, template: ModelVersionInfo) -> str:
    name = unique("rollback")
    seed_champion(registry, template, name)  # champion 2, previous_champion 1
    return name


def test_a_rollback_during_a_retrain_rejects_its_promotion(
    database_url: str, server: Registry, template: ModelVersionInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(database_url)
    name = _model(engine, server, template)
    log_labeled(engine, name, 300)
    settings = job_settings(database_url, name)
    job = submit(engine, model_name=name, trigger="manual", reason="during", force=True).job
    real = server.set_alias

    def set_alias(model: str, alias: str, version: str) -> None:
        real(model, alias, version)
        if alias == "challenger":  # evaluated against version 2; an operator rolls back to 1 now
            rollback(engine, server, settings)

    monkeypatch.setattr(server, "set_alias", set_alias)
    done = worker.run_next(engine, settings=settings, registry=server)
    assert done is not None and done.id == job.id
    assert done.status == "rejected", done.error
    assert (done.error or "").startswith("rejected: champion changed during evaluation")
    reason = orjson.loads(done.details)["reason"]
    assert "evaluated against version 2, the champion is now version 1" in reason
    assert aliases(server, name) == {"champion": "1", "previous_champion": "2", "challenger": "3"}
    assert server.get_version(name, "3").tags["validation_status"] == "rejected"
    types = [e.type for e in events_of(engine, name)]
    assert Counter(types) == {"retrain.started": 1, "model.rolled_back": 1, "model.rejected": 1}


def test_a_rollback_waits_for_a_promotion_to_be_settled(
    sqlite_url: str, server: Registry, template: ModelVersionInfo
) -> None:
    engine = make_engine(sqlite_url)
    name = _model(engine, server, template)
    log_labeled(engine, name, 300)
    settings = job_settings(sqlite_url, name)
    submit(engine, model_name=name, trigger="manual", reason="crash", force=True)
    with pytest.MonkeyPatch.context() as mp:
        crash_at(mp, server, "set_alias", when=lambda _n, alias, _v: alias == "previous_champion", after=True)
        with pytest.raises(Crash):  # champion 2, previous_champion 2: mid-promotion
            worker.run_next(engine, settings=settings, registry=server)
    with pytest.raises(ChampionBusy, match="is promoting version 3"):
        rollback(engine, server, settings)
    assert worker.fail_stale(
        engine, settings=settings, registry=server, model_name=name, older_than_seconds=0
    ) == 1  # fmt: skip
    assert rollback(engine, server, settings) == RolledBack(champion="1", previous_champion="2")


def test_a_rollback_with_a_stale_expectation_is_refused_and_moves_nothing(
    sqlite_url: str, server: Registry, template: ModelVersionInfo
) -> None:
    engine = make_engine(sqlite_url)
    name = _model(engine, server, template)
    settings = job_settings(sqlite_url, name)
    with pytest.raises(ChampionChanged, match="champion is version 2, not the expected version 1"):
        rollback(engine, server, settings, expected_champion="1")
    assert rollback(engine, server, settings, expected_champion="2").champion == "1"
    with pytest.raises(ChampionChanged):  # the same request again: it does not undo the first
        rollback(engine, server, settings, expected_champion="2")
    assert aliases(server, name) == {"champion": "1", "previous_champion": "2"}
    assert [e.type for e in events_of(engine, name)] == ["model.rolled_back"]


def test_two_simultaneous_rollbacks_one_moves_one_is_refused(
    database_url: str, server: Registry, template: ModelVersionInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(database_url)
    name = _model(engine, server, template)
    settings = job_settings(database_url, name)
    both_read = threading.Barrier(2, timeout=30)
    real = server.champion
    waited: set[str] = set()

    def champion(model: str) -> ModelVersionInfo | None:
        found = real(model)
        me = threading.current_thread().name
        if me.startswith("operator") and me not in waited:
            waited.add(me)
            both_read.wait()  # both requests read champion 2 as they start, before either moves it
        return found

    monkeypatch.setattr(server, "champion", champion)
    results: dict[str, object] = {}

    def operator(key: str) -> None:
        try:
            results[key] = rollback(engine, server, settings)
        except (ChampionChanged, NoPreviousChampion, ChampionBusy) as exc:
            results[key] = exc

    threads = [threading.Thread(target=operator, args=(k,), name=f"operator-{k}") for k in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    outcomes = sorted(type(r).__name__ for r in results.values())
    assert outcomes == ["ChampionChanged", "RolledBack"], results
    assert aliases(server, name) == {"champion": "1", "previous_champion": "2"}
    (event,) = events_of(engine, name)
    assert event.type == "model.rolled_back" and event.model_version == "1"


def test_rollback_refuses_when_previous_is_the_champion(
    sqlite_url: str, server: Registry, template: ModelVersionInfo
) -> None:
    engine = make_engine(sqlite_url)
    name = _model(engine, server, template)
    server.set_alias(name, "previous_champion", "2")
    with pytest.raises(NoPreviousChampion, match="previous_champion is the champion itself"):
        rollback(engine, server, job_settings(sqlite_url, name))
    assert events_of(engine, name) == []
