"""The whole loop on a real `mlflow server`: serve -> drift -> alert -> retrain -> promote -> serve v2."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson
import sqlalchemy as sa
from fastapi.testclient import TestClient

from retrain.bootstrap import bootstrap_demo
from retrain.registry import Registry
from retrain.synthetic import FEATURES, TARGET, DriftPlan, generate
from service.app import create_app
from service.config import Settings
from service.db.engine import make_engine
from service.scheduler import embedded_scheduler
from tests.support.alerts_receiver import Receiver

NAME = "e2e-loop"
ADMIN = {"Authorization": "Bearer e2e-admin"}


def event_types(receiver: Receiver) -> list[str]:
    return [r.headers.get("x-driftloop-event-type", "") for r in list(receiver.requests)]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_drift_alert_retrain_promote_and_serve_v2(
    tmp_path: Path, sqlite_url: str, mlflow_server: str
) -> None:
    registry = Registry(mlflow_server)
    bootstrap_demo(registry, NAME, n_rows=3000)
    receiver = Receiver(secret="e2e-webhook-secret-0123").start()
    settings = Settings(
        data_dir=tmp_path, database_url=sqlite_url, model_name=NAME, mlflow_tracking_uri=mlflow_server,
        admin_token="e2e-admin", model_poll_seconds=0.5, drift_check_interval=1.0, window_rows=200,
        min_window_rows=100, performance_window_rows=200, breach_k=2, breach_m=3, retrain_poll_seconds=0.5,
        retrain_min_rows=300, retrain_window_rows=1000, retrain_cooldown_seconds=0,
        webhook_backoff_seconds=0.2,
    )  # fmt: skip
    app = create_app(settings, registry=registry, extras=(embedded_scheduler,))
    stream = generate(2000, seed=21, drift=DriftPlan(covariate_at=600, concept_at=600))
    try:
        with TestClient(app) as client:
            hook = client.post(
                "/v1/webhooks",
                json={"url": receiver.url, "event_types": ["*"], "secret": receiver.secret},
                headers=ADMIN,
            )
            assert hook.status_code == 201, hook.text
            served_v1 = 0
            for start in range(0, len(stream), 100):
                chunk = stream.iloc[start : start + 100]
                records = chunk[list(FEATURES)].to_dict(orient="records")
                r = client.post("/v1/predict", json={"instances": records})
                assert r.status_code == 200, r.text
                preds = r.json()["predictions"]
                served_v1 += sum(p["model_version"] == "1" for p in preds)
                labels = [
                    {"prediction_id": p["prediction_id"], "label": int(y)}
                    for p, y in zip(preds, chunk[TARGET], strict=True)
                ]
                assert client.post("/v1/feedback", json={"items": labels}).json()["stored"] == len(labels)
            assert served_v1 >= 600

            wait_until(lambda: "drift.detected" in event_types(receiver), 60, "a drift.detected webhook")
            wait_until(
                lambda: any(j["status"] == "succeeded" for j in client.get("/v1/retrain/jobs").json()),
                120,
                "a successful retrain job",
            )
            (job,) = [j for j in client.get("/v1/retrain/jobs").json() if j["status"] == "succeeded"]
            assert job["trigger"] == "episode" and job["result_version"] == "2"
            assert job["details"]["challenger_score"] > job["details"]["champion_score"]
            champion = registry.champion(NAME)
            assert champion is not None and champion.version == "2"
            assert registry.get_alias(NAME, "previous_champion").version == "1"  # type: ignore[union-attr]

            def serves_v2() -> bool:
                r = client.post("/v1/predict", json={"features": stream[list(FEATURES)].iloc[-1].to_dict()})
                return r.status_code == 200 and r.json()["model_version"] == "2"

            wait_until(serves_v2, 10, "the API to serve version 2")
            r = client.post(
                "/v1/predict", json={"instances": stream[list(FEATURES)].iloc[-5:].to_dict("records")}
            )
            ids = [p["prediction_id"] for p in r.json()["predictions"]]
            wait_until(lambda: "model.promoted" in event_types(receiver), 30, "a model.promoted webhook")
            lineage = {v["version"]: v for v in client.get("/v1/models").json()["versions"]}
            assert "champion" in lineage["2"]["aliases"] and lineage["2"]["lineage"]["trigger"] == "episode"
            assert lineage["2"]["lineage"]["episode_id"] == str(job["episode_id"])
    finally:
        receiver.stop()

    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        versions = conn.execute(
            sa.text("SELECT model_version FROM predictions WHERE id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": ids},
        ).scalars()
        assert set(versions) == {"2"}
    detected = [r for r in receiver.requests if r.headers.get("x-driftloop-event-type") == "drift.detected"]
    assert detected and all(r.verified for r in detected)
    payload = orjson.loads(detected[0].body)
    assert payload["model"]["name"] == NAME and payload["links"]["report"].endswith("/report.html")
