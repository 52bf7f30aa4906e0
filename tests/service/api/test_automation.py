"""GET/POST /v1/automation: the automatic loop's state of the served model, admin only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
