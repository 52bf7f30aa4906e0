from __future__ import annotations

from collections.abc import Callable
from typing import Any

from retrain.synthetic import TIMESTAMP, generate
from service.db.engine import make_engine
from service.monitor.references import store_reference
from tests.support.core import sample_records

ADMIN = {"Authorization": "Bearer secret"}


def _reference(url: str) -> None:
    engine = make_engine(url)
    store_reference(
        engine,
        model_name="demo",
        model_version="1",
        data=generate(3000, seed=0).drop(columns=[TIMESTAMP]),
        source="test",
    )
    engine.dispose()


def test_check_then_read_runs_features_and_history(make_client: Callable[..., Any], sqlite_url: str) -> None:
    _reference(sqlite_url)
    with make_client(sqlite_url, admin_token="secret", min_window_rows=100) as client:
        assert client.post("/v1/predict", json={"instances": sample_records(300)}).status_code == 200
        assert client.get("/v1/drift/latest").status_code == 404
        assert client.post("/v1/drift/check", json={}).status_code == 401
        r = client.post("/v1/drift/check", json={"last_n": 300}, headers=ADMIN)
        assert r.status_code == 200, r.text
        run = r.json()
        assert (run["status"], run["n_rows"], run["trigger"], run["model_version"]) == (
            "no_drift",
            300,
            "manual",
            "1",
        )
        names = {f["feature"] for f in run["features"]}
        assert {"income", "region", "prediction"} <= names
        assert run["links"]["report"].endswith(f"/v1/drift/runs/{run['id']}/report.html")
        again = client.post("/v1/drift/check", json={"last_n": 300}, headers=ADMIN).json()
        assert again["id"] == run["id"]  # the same window is one run

        small = client.post("/v1/drift/check", json={"last_n": 20}, headers=ADMIN).json()
        assert small["status"] == "insufficient_data" and small["features"] == []

        page = client.get("/v1/drift/runs", params={"limit": 1}).json()
        assert page["total"] == 2 and len(page["items"]) == 1
        only = client.get("/v1/drift/runs", params={"status": "insufficient_data"}).json()
        assert [i["id"] for i in only["items"]] == [small["id"]]
        assert client.get("/v1/drift/runs", params={"model_version": "9"}).json()["total"] == 0
        detail = client.get(f"/v1/drift/runs/{run['id']}").json()
        assert detail["summary"]["n_current"] == 300 and len(detail["features"]) == len(run["features"])
        assert client.get("/v1/drift/latest").json()["id"] in (run["id"], small["id"])
        history = client.get("/v1/drift/features/income/history").json()
        assert [p["run_id"] for p in history["points"]] == [run["id"]]
        assert history["points"][0]["method"] and history["points"][0]["is_drift"] is False
        assert client.get("/v1/episodes").json() == {"total": 0, "limit": 50, "offset": 0, "items": []}


def test_errors_are_404_and_422(make_client: Callable[..., Any], sqlite_url: str) -> None:
    with make_client(sqlite_url, admin_token="secret") as client:
        assert client.get("/v1/drift/runs/999").status_code == 404
        assert client.get("/v1/drift/runs/abc").status_code == 422
        assert client.get("/v1/drift/features/nope/history").status_code == 404
        bad = client.get("/v1/drift/runs", params={"status": "weird", "limit": 0})
        assert bad.status_code == 422
        assert {tuple(e["loc"]) for e in bad.json()["detail"]} >= {("query", "status"), ("query", "limit")}
        rng = client.get(
            "/v1/drift/runs", params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
        )
        # a range that holds no runs is a valid question (the schema cannot say since < until): no runs
        assert rng.status_code == 200 and rng.json()["items"] == []
        assert client.get("/v1/episodes", params={"status": "ajar"}).status_code == 422
        both = client.post(
            "/v1/drift/check", json={"last_n": 5, "start": "2026-01-01T00:00:00Z"}, headers=ADMIN
        )
        assert both.status_code == 422
        naive = client.post("/v1/drift/check", json={"start": "2026-01-01T00:00:00"}, headers=ADMIN)
        assert naive.status_code == 422
        # no traffic and no reference yet: the run says the reference is missing
        client.post("/v1/predict", json={"instances": sample_records(5)})
        r = client.post("/v1/drift/check", json={"last_n": 5}, headers=ADMIN)
        assert r.status_code == 200 and r.json()["status"] == "no_reference"
        assert "no reference data" in r.json()["message"]
