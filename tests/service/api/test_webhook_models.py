"""A webhook can name the models whose events it receives (empty: every model); every event names its
model. Delivered through the real outbox, dispatcher and a loopback receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from service.alerts.outbox import emit
from service.config import Settings
from service.db.engine import make_engine
from tests.support.alerts_receiver import Receiver, dispatch_due

TOKEN = "admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "receiver-secret-0123456789"


@pytest.fixture
def admin(make_client: Callable[..., Any], database_url: str) -> Callable[..., Any]:
    """A client factory that deletes the webhooks it created (the PostgreSQL DB is shared)."""

    @contextmanager
    def factory() -> Iterator[TestClient]:
        with make_client(database_url, admin_token=TOKEN) as client:
            before = {h["id"] for h in client.get("/v1/webhooks", headers=AUTH).json()}
            try:
                yield client
            finally:
                for hook in client.get("/v1/webhooks", headers=AUTH).json():
                    if hook["id"] not in before:
                        client.delete(f"/v1/webhooks/{hook['id']}", headers=AUTH)

    return factory


def _models_of(receiver: Receiver) -> list[str]:
    return [orjson.loads(r.body)["model"]["name"] for r in receiver.requests]


def test_an_event_reaches_the_hooks_of_its_model_and_the_hooks_of_all(
    admin: Callable[..., Any], database_url: str
) -> None:
    receivers = {key: Receiver(secret=SECRET).start() for key in ("churn", "fraud", "all")}
    settings = Settings(webhook_backoff_seconds=0.05, webhook_timeout_seconds=2)
    engine = make_engine(database_url)
    try:
        with admin() as client:
            ids = {}
            for key, receiver in receivers.items():
                models = [] if key == "all" else [key, key]  # a repeated name is kept once
                r = client.post(
                    "/v1/webhooks",
                    json={"url": receiver.url, "event_types": ["drift.detected"], "secret": SECRET,
                          "models": models},
                    headers=AUTH,
                )  # fmt: skip
                assert r.status_code == 201, r.text
                assert r.json()["models"] == ([] if key == "all" else [key])
                ids[key] = r.json()["id"]
            with Session(engine) as session:
                emit(session, type="drift.detected", model_name="churn", model_version="3", summary="drift")
                session.commit()
            asyncio.run(dispatch_due(engine, settings))
            assert _models_of(receivers["churn"]) == ["churn"]
            assert _models_of(receivers["all"]) == ["churn"]
            assert _models_of(receivers["fraud"]) == []
            assert all(r.verified for r in receivers["churn"].requests)

            # the fraud hook widened to every model takes the next event of any model
            r = client.patch(f"/v1/webhooks/{ids['fraud']}", json={"models": []}, headers=AUTH)
            assert r.status_code == 200 and r.json()["models"] == []
            assert client.get(f"/v1/webhooks/{ids['churn']}", headers=AUTH).json()["models"] == ["churn"]
            with Session(engine) as session:
                emit(session, type="drift.detected", model_name="ads", model_version="1", summary="drift")
                session.commit()
            asyncio.run(dispatch_due(engine, settings))
            assert _models_of(receivers["fraud"]) == ["ads"]
            assert _models_of(receivers["all"]) == ["churn", "ads"]
            assert _models_of(receivers["churn"]) == ["churn"]
    finally:
        for receiver in receivers.values():
            receiver.stop()
        engine.dispose()


def test_a_bad_model_name_is_a_422_naming_the_item(admin: Callable[..., Any]) -> None:
    with admin() as client:
        before = client.get("/v1/webhooks", headers=AUTH).json()
        for models in (["a,b"], [""], ["x" * 201], "churn", [" lead"]):
            r = client.post(
                "/v1/webhooks",
                json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"], "models": models},
                headers=AUTH,
            )
            assert r.status_code == 422, (models, r.text)
            assert r.json()["detail"][0]["loc"][:2] == ["body", "models"]
        assert client.get("/v1/webhooks", headers=AUTH).json() == before  # none stored
