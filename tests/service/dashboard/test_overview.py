"""The overview of three watched models and each model's page, through the app, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sklearn.pipeline import Pipeline

from service.app import create_app
from service.config import Settings
from service.dashboard.history import model_href
from service.dashboard.overview import labels_in_window
from service.db.engine import make_engine
from service.db.tables import DriftRun
from tests.support.core import FakeRegistry
from tests.support.estimation import seed_estimation
from tests.support.fleet_seed import Fleet, latest_run, seed_fleet
from tests.support.monitor import unique_model
from tests.support.prediction_log import insert, prediction_row


@pytest.fixture
def fleet(database_url: str, demo_estimator: Pipeline) -> Fleet:
    return seed_fleet(database_url, demo_estimator, unique_model(), unique_model(), unique_model() + " x")


@pytest.fixture
def client(database_url: str, tmp_path: Path, demo_estimator: Pipeline, fleet: Fleet) -> Iterator[TestClient]:
    registries = fleet.registries(demo_estimator)
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        model_name=fleet.a,
        models=f"{fleet.b},{fleet.c}",
        embedded_scheduler=False,
        model_poll_seconds=0.05,
    )
    with TestClient(create_app(settings, loader=(registries.resolve, registries.fetch))) as c:
        yield c


def test_overview_lists_every_model_with_the_numbers_of_the_database(
    client: TestClient, fleet: Fleet, database_url: str
) -> None:
    data = client.get("/v1/dashboard/overview").json()
    rows = {m["name"]: m for m in data["models"]}
    assert list(rows) == list(fleet.names) and data["default_model"] == fleet.a
    a, b, c = (rows[n] for n in fleet.names)
    assert a["default"] and not b["default"]
    assert (a["champion"]["version"], b["champion"]["version"], c["champion"]["version"]) == ("1", "2", None)
    drift_a, perf_a = (
        latest_run(database_url, fleet.a, "drift"),
        latest_run(database_url, fleet.a, "performance"),
    )
    assert a["last_window"]["id"] == drift_a.id and a["last_window"]["n_rows"] == drift_a.n_rows == 1000
    assert a["last_window"]["labeled"] == 400  # rows 1000..1399 of the second block
    assert a["performance"]["id"] == perf_a.id and a["performance"]["status"] == perf_a.status
    assert a["performance"]["metric"] == "accuracy" and 0.0 <= a["performance"]["value"] <= 1.0
    assert a["open_episodes"] == [] and a["last_retrain"] is None and a["automation"]["state"] == "active"
    assert b["last_window"]["status"] == "drift" and b["last_window"]["labeled"] == 0
    assert [e["id"] for e in b["open_episodes"]] == [fleet.episode_id]
    assert b["last_retrain"]["id"] == fleet.job_id and b["last_retrain"]["status"] == "succeeded"
    assert c["last_window"] is None and c["automation"]["state"] == "paused"

    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for name in fleet.names:
        assert f'href="{model_href(name)}"' in html
    assert '<span class="window-rows">1000</span> / <span class="window-labeled">400</span>' in html
    assert 'data-count="1"' in html and 'data-state="paused"' in html and "none loaded" in html


def test_model_pages_show_their_own_model_and_unknown_is_404(client: TestClient, fleet: Fleet) -> None:
    a = client.get("/v1/dashboard/data", params={"model": fleet.a}).json()
    default = client.get("/v1/dashboard/data").json()
    assert a["model_name"] == default["model_name"] == fleet.a
    assert a["next_window"]["rows"] == 601 and a["next_window"]["size"] == 1000
    assert (a["next_label_window"]["rows"], a["next_label_window"]["size"]) == (400, 500)
    b = client.get("/v1/dashboard/data", params={"model": fleet.b}).json()
    assert b["next_window"]["rows"] == 200 and [r["id"] for r in b["retrains"]] == [fleet.job_id]
    assert b["retrains"][0]["gate"] == "passed" and b["versions"][0]["version"] == "2"
    assert {r["model_version"] for r in b["runs"]} == {"2"} and len(a["runs"]) == 4

    page = client.get(model_href(fleet.c))  # a name with a space
    assert page.status_code == 200 and f'<span id="model-name">{fleet.c}</span>' in page.text
    html = client.get(model_href(fleet.a)).text
    assert "601 / 1000 rows" in html and 'class="retrain"' not in html and "No retrain yet" in html
    assert "400 / 500 labeled rows" in html and 'id="next-label-window"' in html

    missing = client.get("/dashboard/models/nope")
    assert missing.status_code == 404 and 'id="unknown-model">nope<' in missing.text
    assert all(f'href="{model_href(n)}"' in missing.text for n in fleet.names)
    gone = client.get("/v1/dashboard/data", params={"model": "nope"})
    assert gone.status_code == 404 and gone.json()["models"] == list(fleet.names)


def test_labels_of_a_time_window_are_counted_in_its_span(database_url: str) -> None:
    model = unique_model()
    engine = make_engine(database_url)
    start = datetime(2026, 3, 1, 10, tzinfo=UTC)
    rows = [prediction_row(model, start + timedelta(minutes=i), {"x": 1.0}) for i in range(-5, 70)]
    labeled = {r["id"]: (1, r["created_at"] + timedelta(hours=1)) for r in rows[::3]}
    insert(engine, rows, labels=labeled)
    end = start + timedelta(hours=1)
    inside = sum(1 for r in rows[::3] if start <= r["created_at"] < end)
    run = DriftRun(window_key=f"drift:{model}:time", kind="drift", model_name=model, model_version="1",
                   window_start=start, window_end=end - timedelta(microseconds=1), n_rows=60,
                   status="no_drift",
                   summary=orjson.dumps({"window": {"mode": "time", "start": start.isoformat()}}).decode(),
                   started_at=end, finished_at=end)  # fmt: skip
    with engine.connect() as conn:
        assert labels_in_window(conn, model, run) == inside == 20


@pytest.mark.parametrize("enabled", [True, False])
def test_the_estimate_is_shown_when_estimation_is_on(
    database_url: str, tmp_path: Path, demo_estimator: Pipeline, fake_registry: FakeRegistry, enabled: bool
) -> None:
    name = unique_model()
    seeded = seed_estimation(database_url, demo_estimator, name=name)
    settings = seeded.model_copy(update={"data_dir": tmp_path, "embedded_scheduler": False,
                                         "estimated_performance": enabled})  # fmt: skip
    with TestClient(create_app(settings, loader=(fake_registry.resolve, fake_registry.fetch))) as client:
        (row,) = client.get("/v1/dashboard/overview").json()["models"]
        html = client.get("/").text
    if not enabled:
        assert row["estimated"] is None and 'class="estimated-status' not in html
        return
    engine = make_engine(database_url)
    with engine.connect() as conn:
        run_id, summary = conn.execute(
            sa.text("SELECT id, summary FROM drift_runs WHERE model_name = :m "
                    "AND kind = 'estimated_performance' ORDER BY id DESC LIMIT 1"), {"m": name}
        ).one()  # fmt: skip
    (estimate,) = [m for m in orjson.loads(summary)["estimate"]["metrics"] if m["metric"] == "accuracy"]
    assert row["estimated"]["id"] == run_id and row["estimated"]["metric"] == "accuracy"
    assert (row["estimated"]["value"], row["estimated"]["lower"], row["estimated"]["upper"]) == (
        estimate["value"], estimate["lower"], estimate["upper"])  # fmt: skip
    assert f'href="/v1/drift/runs/{run_id}">run {run_id}</a>' in html and 'class="estimated-status' in html
