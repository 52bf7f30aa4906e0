"""GET/POST /v1/automation (the default model) and /v1/models/{name}/automation: the automatic loop's
state per model, admin only; a change is an event naming the model."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sklearn.pipeline import Pipeline

from service.app import create_app
from service.config import Settings
from service.db.engine import make_engine
from tests.support.models import FakeRegistries

ADMIN = {"Authorization": "Bearer adm1n-token"}


def test_pause_and_resume_through_the_api(make_client: Callable[..., Any], database_url: str) -> None:
    with make_client(database_url, admin_token="adm1n-token") as client:
        assert client.get("/v1/automation").status_code == 401
        first = client.get("/v1/automation", headers=ADMIN).json()
        assert (first["state"], first["changed_at"]) == ("active", None)

        paused = client.post("/v1/automation", json={"state": "paused", "reason": "audit"}, headers=ADMIN)
        assert paused.status_code == 200
        assert paused.json()["state"] == "paused" and paused.json()["reason"] == "audit"
        assert client.get("/v1/automation", headers=ADMIN).json()["state"] == "paused"

        resumed = client.post("/v1/automation", json={"state": "active"}, headers=ADMIN).json()
        assert resumed["state"] == "active" and resumed["changed_by"] == "admin"


def test_a_bad_state_is_a_422_naming_the_field(make_client: Callable[..., Any], database_url: str) -> None:
    with make_client(database_url, admin_token="adm1n-token") as client:
        bad = client.post("/v1/automation", json={"state": "off"}, headers=ADMIN)
        assert bad.status_code == 422
        assert "state" in bad.text
        extra = client.post("/v1/automation", json={"state": "active", "why": 1}, headers=ADMIN)
        assert extra.status_code == 422
        assert client.get("/v1/automation", headers=ADMIN).json()["state"] == "active"  # nothing stored


def _events(url: str) -> list[tuple[str, str, dict[str, Any]]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT type, model_name, payload FROM events WHERE type LIKE 'automation.%' "
                "ORDER BY created_at"
            )
        ).all()
    engine.dispose()
    return [(r[0], r[1], orjson.loads(r[2])) for r in rows]


def test_each_model_is_paused_on_its_own_and_the_change_is_an_event_naming_it(
    tmp_path: Path, demo_estimator: Pipeline, database_url: str
) -> None:
    churn = f"churn-{uuid.uuid4().hex[:6]}"  # the PostgreSQL database is shared by the session
    registries = FakeRegistries({"demo": ({"1": demo_estimator}, "1"), churn: ({"1": demo_estimator}, "1")})
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, model_name="demo", models=churn,
        admin_token="adm1n-token", embedded_scheduler=False,
    )  # fmt: skip
    before = len(_events(database_url))
    with TestClient(create_app(settings, loader=(registries.resolve, registries.fetch))) as client:
        path = f"/v1/models/{churn}/automation"
        assert client.get(path).status_code == 401
        paused = client.post(path, json={"state": "paused", "reason": "audit"}, headers=ADMIN)
        assert paused.status_code == 200, paused.text
        assert (paused.json()["model_name"], paused.json()["state"]) == (churn, "paused")
        assert client.get(path, headers=ADMIN).json()["state"] == "paused"
        assert client.get("/v1/models/demo/automation", headers=ADMIN).json()["state"] == "active"
        assert client.get("/v1/automation", headers=ADMIN).json()["state"] == "active"  # the default model
        again = client.post(path, json={"state": "paused", "reason": "still"}, headers=ADMIN)
        assert again.json()["reason"] == "still"  # recorded, but no second event: the state did not change
        client.post(path, json={"state": "active"}, headers=ADMIN)

        unknown = client.post("/v1/models/nope/automation", json={"state": "paused"}, headers=ADMIN)
        assert unknown.status_code == 404
        assert unknown.json()["models"] == ["demo", churn] and "'nope'" in unknown.json()["detail"]
        assert client.get("/v1/models/nope/automation", headers=ADMIN).status_code == 404
    events = _events(database_url)[before:]
    assert [(t, m) for t, m, _ in events] == [("automation.paused", churn), ("automation.resumed", churn)]
    payload = events[0][2]
    assert payload["model"] == {"name": churn, "version": None}
    assert payload["data"] == {
        "state": "paused",
        "previous_state": "active",
        "reason": "audit",
        "by": "admin",
    }
    assert payload["links"]["automation"].endswith(f"/v1/models/{churn}/automation")
