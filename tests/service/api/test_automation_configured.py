"""A configured pause through the app (`automation_paused` in the models file, DRIFTLOOP_AUTOMATION_PAUSED):
no automatic retrain, GET automation reads paused naming where it is set, a resume is a 409 saying how
to lift it and stores nothing, a manual retrain still runs, the dashboard shows it; SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sklearn.pipeline import Pipeline

from service.app import create_app
from service.config import Settings
from service.dashboard.history import model_href
from service.monitor.sources import serving_models
from service.runtime import Runtime
from tests.support.models import FakeRegistries
from tests.support.monitor import unique_model
from tests.support.retrain_triggers import jobs_of, open_performance_episode, trigger_job, trigger_tick

ADMIN = {"Authorization": "Bearer adm1n-token"}


@contextmanager
def app_of(
    tmp_path: Path, database_url: str, estimator: Pipeline, names: list[str], models_file: str
) -> Iterator[TestClient]:
    path = tmp_path / "models.toml"
    path.write_text(models_file)
    registries = FakeRegistries({n: ({"1": estimator}, "1") for n in names})
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, model_name=names[0], models=",".join(names[1:]),
        models_file=str(path), admin_token="adm1n-token", embedded_scheduler=False,
        retrain_cooldown_seconds=0,
    )  # fmt: skip
    with TestClient(create_app(settings, loader=(registries.resolve, registries.fetch))) as client:
        yield client


def retrained_on_episodes(client: TestClient, names: list[str]) -> dict[str, list[tuple[str, int | None]]]:
    """Open a breaching episode on each model, run the app's retrain trigger once, and return the jobs."""
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    episodes = {m: open_performance_episode(runtime.engine, m) for m in names}
    job = trigger_job(runtime.settings, serving_models(runtime), runtime.engine)
    try:
        assert trigger_tick(job) == dict.fromkeys(names, True)
    finally:
        job.close()
    found = jobs_of(runtime.engine, names)
    assert all(jobs in ([], [("queued", episodes[m])]) for m, jobs in found.items())
    return found


def stored(database_url: str, model: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The model's stored automation rows (state, changed_by) and its automation.* events."""
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT state, changed_by FROM automation_states WHERE model_name = :m"), {"m": model}
        ).all()
        events = conn.execute(
            sa.text("SELECT type FROM events WHERE model_name = :m AND type LIKE 'automation.%'"),
            {"m": model},
        ).all()
    engine.dispose()
    return [(r[0], r[1]) for r in rows], [e[0] for e in events]


def test_a_model_paused_in_the_models_file(
    tmp_path: Path, database_url: str, demo_estimator: Pipeline
) -> None:
    paused, other = unique_model(), unique_model()
    text = f'[models."{paused}"]\nautomation_paused = true\n[models."{other}"]\nwindow_rows = 500\n'
    with app_of(tmp_path, database_url, demo_estimator, [paused, other], text) as client:
        jobs = retrained_on_episodes(client, [paused, other])
        assert (jobs[paused], len(jobs[other])) == ([], 1)  # the same breach: only the other is retrained

        source = f"automation_paused = true in [models.{paused}] of {tmp_path / 'models.toml'}"
        for path in (f"/v1/models/{paused}/automation", "/v1/automation"):  # it is the default model too
            got = client.get(path, headers=ADMIN).json()
            assert (got["state"], got["reason"], got["changed_by"]) == ("paused", f"paused by {source}",
                                                                      "configuration")  # fmt: skip
        assert client.get(f"/v1/models/{other}/automation", headers=ADMIN).json()["state"] == "active"

        resume = client.post(f"/v1/models/{paused}/automation", json={"state": "active"}, headers=ADMIN)
        assert resume.status_code == 409, resume.text
        detail = resume.json()["detail"]
        assert f"paused by {source}" in detail
        assert f"set automation_paused = false in [models.{paused}] of {tmp_path / 'models.toml'}" in detail
        assert "restart" in detail
        assert client.post("/v1/automation", json={"state": "active"}, headers=ADMIN).status_code == 409
        paths = client.get("/openapi.json").json()["paths"]  # the schema says a 409 may come
        for route in ("/v1/automation", "/v1/models/{name}/automation"):
            assert "409" in paths[route]["post"]["responses"]
        assert stored(database_url, paused) == ([], [])  # nothing recorded, no automation.resumed
        assert client.get(f"/v1/models/{paused}/automation", headers=ADMIN).json()["state"] == "paused"

        manual = client.post("/v1/retrain", json={"reason": "a person asked"}, headers=ADMIN)
        assert manual.status_code == 202, manual.text
        job = manual.json()["job"]
        assert manual.json()["created"] and (job["model_name"], job["trigger"]) == (paused, "manual")


def test_the_environment_pauses_every_model_unless_its_table_says_otherwise(
    tmp_path: Path, database_url: str, demo_estimator: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_AUTOMATION_PAUSED", "true")
    a, b, off = unique_model(), unique_model() + " x", unique_model()
    # b's table does not set the key: the environment's pause; `off` lifts it for itself
    text = f'[models."{b}"]\nwindow_rows = 500\n[models."{off}"]\nautomation_paused = false\n'
    with app_of(tmp_path, database_url, demo_estimator, [a, b, off], text) as client:
        jobs = retrained_on_episodes(client, [a, b, off])
        assert (jobs[a], jobs[b], len(jobs[off])) == ([], [], 1)

        tables = {a: f"[models.{a}]", b: f'[models."{b}"]'}  # how to lift it for one model, quoted
        for name in (a, b):
            path = f"/v1/models/{name}/automation".replace(" ", "%20")
            got = client.get(path, headers=ADMIN).json()
            assert (got["state"], got["reason"]) == ("paused", "paused by DRIFTLOOP_AUTOMATION_PAUSED=true")
            resume = client.post(path, json={"state": "active"}, headers=ADMIN)
            assert resume.status_code == 409
            detail = resume.json()["detail"]
            assert "set DRIFTLOOP_AUTOMATION_PAUSED=false" in detail and "restart" in detail
            assert f"automation_paused = false in {tables[name]} of DRIFTLOOP_MODELS_FILE" in detail
            assert stored(database_url, name) == ([], [])
        assert client.get(f"/v1/models/{off}/automation", headers=ADMIN).json()["state"] == "active"

        overview = {m["name"]: m["automation"] for m in client.get("/v1/dashboard/overview").json()["models"]}
        assert {n: s["state"] for n, s in overview.items()} == {a: "paused", b: "paused", off: "active"}
        assert overview[a]["reason"] == "paused by DRIFTLOOP_AUTOMATION_PAUSED=true"
        rows = dict(re.findall(r'<tr class="model" data-model="([^"]+)">(.*?)</tr>', client.get("/").text))
        assert set(rows) == {a, b, off}
        for name in (a, b):
            assert 'data-state="paused" title="paused by DRIFTLOOP_AUTOMATION_PAUSED=true"' in rows[name]
        assert 'data-state="active"' in rows[off]

        page = client.get(model_href(a)).text  # the model's page: paused by the configuration, no POST
        assert 'data-state="paused" data-by="configuration"' in page
        assert "paused by DRIFTLOOP_AUTOMATION_PAUSED=true" in page and "to resume" not in page
