"""MLflow down while serving: the loaded model keeps answering, the outage is visible, recovery is silent."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from retrain.bootstrap import bootstrap_demo
from retrain.registry import Registry
from service.app import create_app
from service.config import Settings
from tests.support.alerts_receiver import free_port
from tests.support.core import sample_records
from tests.support.mlflow_server import MlflowServer

NAME = "outage-model"


def test_serving_survives_an_mlflow_outage(
    tmp_path: Path, sqlite_url: str, migrated_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    shutil.copyfile(migrated_db, tmp_path / "mlflow.db")
    server = MlflowServer(tmp_path, free_port()).start()
    try:
        registry = Registry(server.uri)
        bootstrap_demo(registry, NAME, n_rows=1000)
        settings = Settings(
            data_dir=tmp_path / "data", database_url=sqlite_url, model_name=NAME,
            mlflow_tracking_uri=server.uri, model_poll_seconds=0.2, embedded_scheduler=False,
        )  # fmt: skip
        record = sample_records(1)[0]
        with TestClient(create_app(settings, registry=registry)) as client:
            assert client.post("/v1/predict", json={"features": record}).json()["model_version"] == "1"

            server.stop()  # MLflow goes away
            holder = client.app.state.runtime.holder  # type: ignore[attr-defined]
            deadline = time.monotonic() + 15
            while holder.last_error is None and time.monotonic() < deadline:
                assert client.post("/v1/predict", json={"features": record}).status_code == 200
                time.sleep(0.1)
            assert holder.last_error is not None and "registry unreachable" in holder.last_error
            for _ in range(20):
                r = client.post("/v1/predict", json={"features": record})
                assert r.status_code == 200 and r.json()["model_version"] == "1"
            ready = client.get("/readyz")
            assert ready.status_code == 200  # the model is loaded; MLflow is not on the serving path
            models = client.get("/v1/models")
            assert models.status_code == 503 and "registry unreachable" in models.json()["detail"]

            server.start()  # back, same port and store
            deadline = time.monotonic() + 15
            while holder.last_error is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert holder.last_error is None
            assert client.get("/v1/models").json()["serving_version"] == "1"
            assert client.post("/v1/predict", json={"features": record}).status_code == 200
    finally:
        server.stop()
