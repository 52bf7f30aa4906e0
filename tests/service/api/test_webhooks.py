"""Admin API of alert webhooks: validation, write-only secret, target policy, test/redeliver/log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.db.engine import make_engine
from tests.support.alerts_receiver import Receiver, dispatch_due

TOKEN = "admin-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "receiver-secret-0123456789"
CLOSED = "http://127.0.0.1:9/hook"  # discard port: nothing listens, fails fast if ever dispatched


@pytest.fixture
def admin(make_client: Callable[..., Any], database_url: str) -> Callable[..., Any]:
    """A client factory that deletes the webhooks it created (the PostgreSQL DB is shared)."""

    @contextmanager
    def factory(**overrides: Any) -> Iterator[TestClient]:
        with make_client(database_url, admin_token=TOKEN, **overrides) as client:
            before = {h["id"] for h in client.get("/v1/webhooks", headers=AUTH).json()}
            try:
                yield client
            finally:
                for hook in client.get("/v1/webhooks", headers=AUTH).json():
                    if hook["id"] not in before:
                        client.delete(f"/v1/webhooks/{hook['id']}", headers=AUTH)

    return factory


def test_crud_and_secret_is_write_only(admin: Callable[..., Any]) -> None:
    with admin() as client:
        created = client.post(
            "/v1/webhooks",
            json={"url": CLOSED, "event_types": ["drift.detected"], "secret": SECRET},
            headers=AUTH,
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        assert hook["secret"] is None and SECRET not in created.text
        generated = client.post("/v1/webhooks", json={"url": CLOSED, "event_types": ["*"]}, headers=AUTH)
        assert generated.status_code == 201
        new_secret = generated.json()["secret"]
        assert new_secret.startswith("whsec_") and len(new_secret) > 30
        assert len(generated.json()["event_types"]) == 14  # "*" expands to every event type
        assert "performance.estimated_degraded" in generated.json()["event_types"]

        hook_id = hook["id"]
        patched = client.patch(
            f"/v1/webhooks/{hook_id}",
            json={"event_types": ["model.promoted", "model.promoted"], "format": "slack", "secret": "r" * 20},
            headers=AUTH,
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["event_types"] == ["model.promoted"] and patched.json()["format"] == "slack"
        responses = [
            patched,
            client.get(f"/v1/webhooks/{hook_id}", headers=AUTH),
            client.get(f"/v1/webhooks/{generated.json()['id']}", headers=AUTH),
            client.get("/v1/webhooks", headers=AUTH),
        ]
        for response in responses:
            assert response.status_code == 200
            for secret in (SECRET, new_secret, "r" * 20):
                assert secret not in response.text
            assert "secret" not in response.text
        assert client.delete(f"/v1/webhooks/{hook_id}", headers=AUTH).status_code == 204
        assert client.get(f"/v1/webhooks/{hook_id}", headers=AUTH).status_code == 404
        assert client.delete(f"/v1/webhooks/{hook_id}", headers=AUTH).status_code == 404


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"url": "ftp://example.com/x", "event_types": ["drift.detected"]}, "url"),
    ({"url": "not a url", "event_types": ["drift.detected"]}, "url"),
    ({"url": "http://", "event_types": ["drift.detected"]}, "url"),
    ({"url": "http://user:pw@example.com/", "event_types": ["drift.detected"]}, "url"),
    ({"url": "http://example.com:99999/", "event_types": ["drift.detected"]}, "url"),
    ({"url": CLOSED, "event_types": ["drift.detected", "drift.exploded"]}, "event_types"),
    ({"url": CLOSED, "event_types": []}, "event_types"),
    ({"url": CLOSED, "event_types": ["drift.detected"], "format": "xml"}, "format"),
    ({"url": CLOSED, "event_types": ["drift.detected"], "secret": "short-secret"}, "secret"),
    ({"url": "http://169.254.169.254/latest/", "event_types": ["drift.detected"]}, "url"),
    ({"url": "http://[fe80::1]/", "event_types": ["drift.detected"]}, "url"),
    ({"url": "http://[fd00:ec2::254]/", "event_types": ["drift.detected"]}, "url"),
    ({"url": "http://100.100.100.200/", "event_types": ["drift.detected"]}, "url"),
    ({"url": "http://metadata.google.internal/", "event_types": ["drift.detected"]}, "url"),
    ({"url": "http://[::ffff:169.254.169.254]/", "event_types": ["drift.detected"]}, "url"),
]


def test_invalid_webhooks_are_422_with_the_field(admin: Callable[..., Any]) -> None:
    with admin() as client:
        hook = client.post("/v1/webhooks", json={"url": CLOSED, "event_types": ["*"]}, headers=AUTH).json()
        for body, field in INVALID:
            response = client.post("/v1/webhooks", json=body, headers=AUTH)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["detail"][0]["loc"][:2] == ["body", field], body
            assert "short-secret" not in response.text
            changed = client.patch(f"/v1/webhooks/{hook['id']}", json={field: body[field]}, headers=AUTH)
            assert changed.status_code == 422, (body, changed.text)
        assert len(client.get("/v1/webhooks", headers=AUTH).json()) >= 1
        assert client.get(f"/v1/webhooks/{hook['id']}", headers=AUTH).json() == {
            k: v for k, v in hook.items() if k != "secret"
        }


def test_allowlist_and_private_policy(admin: Callable[..., Any]) -> None:
    with admin(webhook_allowed_hosts=["hooks.example.com", "*.corp.example"]) as client:
        for url, status in [
            ("https://hooks.example.com/x", 201),
            ("https://a.corp.example/x", 201),
            ("https://evil.example.org/x", 422),
            (CLOSED, 422),
        ]:
            response = client.post("/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=AUTH)
            assert response.status_code == status, (url, response.text)
    with admin(webhook_allow_private=False) as client:
        for url in (CLOSED, "http://10.1.2.3/", "http://localhost:8080/"):
            response = client.post("/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=AUTH)
            assert response.status_code == 422 and "private" in response.text, url


def test_admin_token_required(admin: Callable[..., Any]) -> None:
    with admin() as client:
        assert client.get("/v1/webhooks").status_code == 401
        bad = client.get("/v1/webhooks", headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 403
        assert client.post("/v1/webhooks/1/test").status_code == 401


def test_test_delivery_log_and_redelivery(admin: Callable[..., Any], database_url: str) -> None:
    receiver = Receiver(secret=SECRET, status=500).start()
    settings = Settings(webhook_max_attempts=2, webhook_backoff_seconds=0.05, webhook_timeout_seconds=2)
    engine = make_engine(database_url)
    try:
        with admin() as client:
            hook = client.post(
                "/v1/webhooks",
                json={"url": receiver.url, "event_types": ["retrain.failed"], "secret": SECRET},
                headers=AUTH,
            ).json()
            queued = client.post(f"/v1/webhooks/{hook['id']}/test", headers=AUTH)
            assert queued.status_code == 202
            delivery_id = queued.json()["delivery_id"]

            def log() -> dict[str, Any]:
                (item,) = client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=AUTH).json()
                return dict(item)

            deadline = time.monotonic() + 10
            while log()["status"] != "dead":
                assert time.monotonic() < deadline
                asyncio.run(dispatch_due(engine, settings))
                time.sleep(0.05)
            dead = log()
            assert dead["event_type"] == "webhook.test" and dead["attempts"] == 2
            assert [a["status_code"] for a in dead["attempt_log"]] == [500, 500]
            assert receiver.requests[0].verified
            assert receiver.requests[0].headers["x-driftloop-event-type"] == "webhook.test"

            receiver.status = 200
            again = client.post(f"/v1/webhooks/deliveries/{delivery_id}/redeliver", headers=AUTH)
            assert again.status_code == 200 and again.json()["status"] == "pending"
            conflict = client.post(f"/v1/webhooks/deliveries/{delivery_id}/redeliver", headers=AUTH)
            assert conflict.status_code == 409
            asyncio.run(dispatch_due(engine, settings))
            done = log()
            assert done["status"] == "delivered"
            assert [a["status_code"] for a in done["attempt_log"]] == [500, 500, 200]
            assert receiver.events == {queued.json()["event_id"]: 1}
            filtered = client.get(f"/v1/webhooks/{hook['id']}/deliveries?status=dead", headers=AUTH)
            assert filtered.json() == []

            assert client.post("/v1/webhooks/deliveries/999999/redeliver", headers=AUTH).status_code == 404
            assert client.get("/v1/webhooks/999999/deliveries", headers=AUTH).status_code == 404
            assert client.get(f"/v1/webhooks/{2**40}", headers=AUTH).status_code == 422
            client.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": False}, headers=AUTH)
            assert client.post(f"/v1/webhooks/{hook['id']}/test", headers=AUTH).status_code == 409
    finally:
        receiver.stop()
        engine.dispose()
