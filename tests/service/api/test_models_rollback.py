"""POST /v1/models/rollback: compare-and-set on the champion, 409 when refused (real `mlflow server`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from retrain.registry import ModelVersionInfo, Registry
from service.app import create_app
from service.config import Settings
from service.db.engine import make_engine
from tests.support.promotion import aliases, events_of, seed_champion, server, template, unique

__all__ = ["server", "template"]

ADMIN = {"Authorization": "Bearer s3cret-admin"}


@pytest.fixture
def api(
    tmp_path: Path, sqlite_url: str, server: Registry, template: ModelVersionInfo
) -> Iterator[TestClient]:
    name = unique("api-rollback")
    seed_champion(server, template, name)  # champion 2, previous_champion 1
    settings = Settings(
        data_dir=tmp_path, database_url=sqlite_url, model_name=name, model_poll_seconds=0.1,
        embedded_scheduler=False, admin_token="s3cret-admin",
    )  # fmt: skip
    with TestClient(create_app(settings, registry=server)) as client:
        yield client


def _name(client: TestClient) -> str:
    return str(client.get("/v1/models").json()["name"])


def test_two_simultaneous_rollbacks_answer_one_200_and_one_409(
    api: TestClient, server: Registry, sqlite_url: str
) -> None:
    start = threading.Barrier(2, timeout=30)
    answers: list[httpx.Response] = []

    def operator() -> None:
        start.wait()
        answers.append(api.post("/v1/models/rollback", json={"expected_champion": "2"}, headers=ADMIN))

    threads = [threading.Thread(target=operator) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    ok = next(r for r in answers if r.status_code == 200)
    refused = next(r for r in answers if r.status_code == 409)
    assert ok.json() == {"champion": "1", "previous_champion": "2"}
    assert "the champion is version 1, not the expected version 2" in refused.json()["detail"]
    name = _name(api)
    assert aliases(server, name) == {"champion": "1", "previous_champion": "2"}
    assert [e.type for e in events_of(make_engine(sqlite_url), name)] == ["model.rolled_back"]


def test_a_stale_expectation_is_a_409_that_moves_nothing(
    api: TestClient, server: Registry, sqlite_url: str
) -> None:
    r = api.post("/v1/models/rollback?expected_champion=1", headers=ADMIN)
    assert r.status_code == 409 and "nothing was moved" in r.json()["detail"]
    r = api.post("/v1/models/rollback?expected_champion=1", json={"expected_champion": "2"}, headers=ADMIN)
    assert r.status_code == 409 and "differs between the body and the query" in r.json()["detail"]
    name = _name(api)
    assert aliases(server, name) == {"champion": "2", "previous_champion": "1"}
    assert events_of(make_engine(sqlite_url), name) == []
    r = api.post("/v1/models/rollback?expected_champion=2", headers=ADMIN)
    assert r.status_code == 200 and r.json()["champion"] == "1"


@pytest.mark.parametrize(
    ("query", "body", "loc"),
    [
        ("", {"expected_champion": "two"}, ["body", "expected_champion"]),
        ("?expected_champion=-1", None, ["query", "expected_champion"]),
        ("", {"expected": "2"}, ["body", "expected"]),
    ],
    ids=["not-a-version", "negative", "unknown-field"],
)
def test_a_bad_expectation_is_a_422_naming_the_field(
    api: TestClient, server: Registry, query: str, body: dict[str, str] | None, loc: list[str]
) -> None:
    r = api.post(f"/v1/models/rollback{query}", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc
    assert aliases(server, _name(api)) == {"champion": "2", "previous_champion": "1"}
