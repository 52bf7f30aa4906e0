"""Models watched at run time: PUT / DELETE /v1/models/{name}/watch, stored in the database and picked up
by every API process without a restart (two apps on one database stand for two processes)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sklearn.pipeline import Pipeline

from service.app import create_app
from service.config import Settings
from service.db.engine import make_engine
from tests.support.core import sample_records, train_demo_estimator
from tests.support.models import FakeRegistries

RECORDS = sample_records(5, seed=3)
TOKEN = "adm-5e1f0c9a7b3d2e48"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def other_estimator() -> Pipeline:
    return train_demo_estimator(n_rows=400, seed=7)


@pytest.fixture
def registries(demo_estimator: Pipeline, other_estimator: Pipeline) -> FakeRegistries:
    return FakeRegistries(
        {
            "demo": ({"1": demo_estimator}, "1"),
            "churn": ({"1": other_estimator}, "1"),
            "fraud": ({"2": other_estimator}, "2"),
            "late": ({"1": demo_estimator}, None),  # registered, no champion yet
        }
    )


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql)).all()]
    finally:
        engine.dispose()


@pytest.fixture
def make_app(tmp_path: Path, registries: FakeRegistries, database_url: str) -> Iterator[Callable[..., Any]]:
    @contextmanager
    def factory(**overrides: Any) -> Iterator[TestClient]:
        settings = Settings(
            data_dir=tmp_path,
            database_url=database_url,
            model_name="demo",
            models="churn",
            model_poll_seconds=0.05,
            embedded_scheduler=False,
            admin_token=TOKEN,
            **overrides,
        )
        app = create_app(
            settings, loader=(registries.resolve, registries.fetch), model_exists=registries.has_model
        )
        with TestClient(app) as client:
            yield client

    yield factory
    engine = make_engine(database_url)  # the PostgreSQL database is shared by the session's tests
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM watched_models"))
    engine.dispose()


def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.05)


def _predict(client: TestClient, name: str) -> Any:
    return client.post(f"/v1/models/{name}/predict", json={"instances": RECORDS})


def _names(client: TestClient) -> tuple[str, ...]:
    return tuple(client.app.state.runtime.model_names)  # type: ignore[attr-defined]


def test_a_put_in_one_process_is_served_by_the_other_without_restart(
    make_app: Callable[..., Any], database_url: str
) -> None:
    before = _rows(database_url, "SELECT count(*) FROM predictions WHERE model_name = 'fraud'")[0][0]
    with make_app() as a, make_app() as b:
        assert _predict(b, "fraud").status_code == 404
        assert a.put("/v1/models/fraud/watch").status_code == 401
        r = a.put("/v1/models/fraud/watch", headers=ADMIN)
        assert r.status_code == 201, r.text
        assert r.json() == {
            "name": "fraud", "source": "watched", "default": False, "champion_version": "2", "ready": True,
            "error": None,
        }  # fmt: skip
        assert _predict(a, "fraud").status_code == 200  # the writing process serves it at once
        _until(lambda: _predict(b, "fraud").status_code == 200)  # the other within its poll interval
        assert _names(b) == ("demo", "churn", "fraud")
        assert b.get("/readyz").json()["models"]["fraud"] == "version 2"
        listed = {m["name"]: m["source"] for m in b.get("/v1/models/watched").json()}
        assert listed == {"demo": "configured", "churn": "configured", "fraud": "watched"}
        runtime = b.app.state.runtime  # type: ignore[attr-defined]
        settings = runtime.settings_for("fraud")  # a watched model has the global settings
        assert settings.model_name == "fraud" and settings.window_rows == runtime.settings.window_rows

        again = b.put("/v1/models/fraud/watch", headers=ADMIN)  # idempotent, from either process
        assert again.status_code == 200 and again.json()["ready"]
        assert _rows(database_url, "SELECT name FROM watched_models") == [("fraud",)]

        assert b.delete("/v1/models/fraud/watch", headers=ADMIN).status_code == 204
        assert _predict(b, "fraud").status_code == 404
        _until(lambda: _predict(a, "fraud").status_code == 404)
        r = _predict(a, "fraud")
        assert r.json()["models"] == ["demo", "churn"] and "'fraud'" in r.json()["detail"]
        assert _names(a) == ("demo", "churn")
        assert "fraud" not in a.get("/readyz").json()["models"]
        r = a.delete("/v1/models/fraud/watch", headers=ADMIN)
        assert r.status_code == 404 and "demo, churn" in r.json()["detail"]
    # every 2xx of the watched model was logged (3 answers of 5 rows: a twice at most, b once at least)
    logged = _rows(database_url, "SELECT count(*) FROM predictions WHERE model_name = 'fraud'")[0][0]
    assert (logged - before) % len(RECORDS) == 0 and logged - before >= 2 * len(RECORDS)


def test_a_restarted_process_serves_the_watched_models_from_the_database(
    make_app: Callable[..., Any],
) -> None:
    with make_app() as a:
        assert a.put("/v1/models/fraud/watch", headers=ADMIN).status_code == 201
    with make_app() as fresh:
        assert _names(fresh) == ("demo", "churn", "fraud")
        assert _predict(fresh, "fraud").json()["model_version"] == "2"


def test_an_unregistered_or_malformed_name_is_refused_and_nothing_is_stored(
    make_app: Callable[..., Any], database_url: str
) -> None:
    with make_app() as client:
        r = client.put("/v1/models/ghost/watch", headers=ADMIN)
        assert r.status_code == 404 and "'ghost'" in r.json()["detail"]
        for bad in ("a%2Cb", "%20lead", "x" * 201, "tab%09in", "a%3Ab"):
            r = client.put(f"/v1/models/{bad}/watch", headers=ADMIN)
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["detail"][0]["loc"] == ["path", "name"]
        assert _names(client) == ("demo", "churn")
    assert _rows(database_url, "SELECT name FROM watched_models") == []


def test_a_watched_model_without_a_champion_is_not_ready_until_it_has_one(
    make_app: Callable[..., Any], registries: FakeRegistries
) -> None:
    with make_app() as client:
        r = client.put("/v1/models/late/watch", headers=ADMIN)
        assert r.status_code == 201
        assert r.json()["ready"] is False and r.json()["champion_version"] is None
        assert "champion" in r.json()["error"]
        ready = client.get("/readyz")
        assert ready.status_code == 200  # the others serve
        assert ready.json()["models"]["late"].startswith("not loaded")
        assert client.get("/models/late/ping").status_code == 503
        assert _predict(client, "late").status_code == 503
        registries["late"].champion = "1"
        _until(lambda: client.get("/models/late/ping").status_code == 200)
        assert _predict(client, "late").json()["model_version"] == "1"


def test_configured_models_stay_the_configurations(make_app: Callable[..., Any], database_url: str) -> None:
    with make_app() as client:
        for name in ("demo", "churn"):
            r = client.delete(f"/v1/models/{name}/watch", headers=ADMIN)
            assert r.status_code == 409 and "DRIFTLOOP_MODELS" in r.json()["detail"]
            r = client.put(f"/v1/models/{name}/watch", headers=ADMIN)
            assert r.status_code == 200 and r.json()["source"] == "configured"
        assert _predict(client, "churn").status_code == 200
        assert _names(client) == ("demo", "churn")
    assert _rows(database_url, "SELECT name FROM watched_models") == []


def test_a_registry_that_cannot_answer_is_a_503(
    make_app: Callable[..., Any], registries: FakeRegistries, database_url: str
) -> None:
    def down(name: str) -> bool:
        raise ConnectionError("registry down")

    registries.has_model = down  # type: ignore[method-assign]
    with make_app() as client:
        r = client.put("/v1/models/fraud/watch", headers=ADMIN)
        assert r.status_code == 503 and "registry unreachable" in r.json()["detail"]
    assert _rows(database_url, "SELECT name FROM watched_models") == []


def test_a_stored_change_this_process_cannot_apply_yet_is_a_503_and_applied_later(
    make_app: Callable[..., Any], database_url: str
) -> None:
    with make_app() as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        applied = runtime.sync_watched

        async def database_gone() -> None:
            raise ConnectionError("database gone")

        runtime.sync_watched = database_gone
        r = client.put("/v1/models/fraud/watch", headers=ADMIN)
        assert r.status_code == 503 and "stored" in r.json()["detail"]
        assert _rows(database_url, "SELECT name FROM watched_models") == [("fraud",)]
        runtime.sync_watched = applied  # the database answers again: the poller applies the change
        _until(lambda: _predict(client, "fraud").status_code == 200)
