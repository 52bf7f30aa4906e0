from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from retrain.bootstrap import bootstrap_demo
from retrain.registry import Registry
from service.app import create_app
from service.config import Settings
from service.db.engine import make_engine
from service.db.tables import Event
from tests.support.core import sample_records

NAME = "api-models"
ADMIN = {"Authorization": "Bearer s3cret-admin"}


@pytest.fixture
def client(tmp_path: Path, sqlite_url: str, registry: Registry) -> Iterator[TestClient]:
    bootstrap_demo(registry, NAME, n_rows=1500)
    settings = Settings(
        data_dir=tmp_path, database_url=sqlite_url, model_name=NAME, model_poll_seconds=0.1,
        embedded_scheduler=False, admin_token="s3cret-admin",
    )  # fmt: skip
    with TestClient(create_app(settings, registry=registry)) as test_client:
        yield test_client


def wait_for_version(client: TestClient, version: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.post("/v1/predict", json={"features": sample_records(1)[0]})
        assert r.status_code == 200, r.text
        if r.json()["model_version"] == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"version {version} not served within {timeout} s")


def test_models_lists_versions_with_aliases_and_rollback(
    client: TestClient, registry: Registry, sqlite_url: str
) -> None:
    body = client.get("/v1/models").json()
    assert body["serving_version"] == "1"
    (v1,) = body["versions"]
    assert v1["aliases"] == ["champion"] and v1["metrics"]
    assert [c["name"] for c in client.get("/v1/models/schema").json()][:2] == ["age", "income"]

    assert client.post("/v1/models/rollback").status_code == 401
    assert client.post("/v1/models/rollback", headers={"Authorization": "Bearer nope"}).status_code == 403
    r = client.post("/v1/models/rollback", headers=ADMIN)
    assert r.status_code == 409 and "previous_champion" in r.text

    bootstrap_demo(registry, NAME, n_rows=1500, seed=3)  # version 2 becomes champion
    wait_for_version(client, "2")
    r = client.post("/v1/models/rollback", headers=ADMIN)
    assert r.status_code == 200 and r.json() == {"champion": "1", "previous_champion": "2"}
    wait_for_version(client, "1", timeout=1)  # the rolling-back process swaps at once
    versions = {v["version"]: v["aliases"] for v in client.get("/v1/models").json()["versions"]}
    assert versions == {"2": ["previous_champion"], "1": ["champion"]}
    with Session(make_engine(sqlite_url)) as session:
        (event,) = session.exec(select(Event).where(Event.type == "model.rolled_back")).all()
    assert event.model_version == "1"


def test_manual_retrain_is_single_flight_and_admin_only(client: TestClient) -> None:
    assert client.post("/v1/retrain", json={"reason": "x"}).status_code == 401
    r = client.post("/v1/retrain", json={"reason": ""}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "reason"]
    r = client.post(
        "/v1/retrain",
        json={"reason": "w", "window_start": "2026-02-01T00:00:00Z", "window_end": "2026-01-01T00:00:00Z"},
        headers=ADMIN,
    )
    assert r.status_code == 409  # a window no row can be in: nothing to learn from (docs/limits.md)
    first = client.post("/v1/retrain", json={"reason": "labels look off"}, headers=ADMIN)
    assert first.status_code == 202 and first.json()["created"] is True
    job = first.json()["job"]
    assert job["status"] == "queued" and job["trigger"] == "manual"
    assert first.headers["location"] == f"/v1/retrain/jobs/{job['id']}"
    second = client.post("/v1/retrain", json={"reason": "again"}, headers=ADMIN).json()
    assert second["created"] is False and second["job"]["id"] == job["id"]
    assert client.get(f"/v1/retrain/jobs/{job['id']}").json()["reason"] == "labels look off"
    assert [j["id"] for j in client.get("/v1/retrain/jobs?status=queued").json()] == [job["id"]]
    assert client.get("/v1/retrain/jobs/999999").status_code == 404
    assert client.get("/v1/retrain/jobs?status=bogus").status_code == 422


def test_admin_endpoints_closed_without_a_configured_token(
    tmp_path: Path, sqlite_url: str, registry: Registry
) -> None:
    bootstrap_demo(registry, NAME, n_rows=1000)
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url, model_name=NAME, embedded_scheduler=False)
    with TestClient(create_app(settings, registry=registry)) as c:
        r = c.post("/v1/retrain", json={"reason": "x"}, headers=ADMIN)
        assert r.status_code == 403 and "DRIFTLOOP_ADMIN_TOKEN" in r.text
    opened = settings.model_copy(update={"admin_open": True})
    with TestClient(create_app(opened, registry=registry)) as c:
        assert c.post("/v1/retrain", json={"reason": "x"}).status_code == 202
