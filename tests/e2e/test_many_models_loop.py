"""Many models, one deployment, on a real `mlflow server`, SQLite and PostgreSQL: different pipelines are
served side by side, labeled, checked by the one embedded scheduler; one model drifts, its episode opens,
its retrain promotes version 2, and the other models are untouched (no episode, no job, champion v1).

The drifting model is a named one (not the default), so nothing here leans on the default model.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from retrain.bootstrap import bootstrap_demo
from retrain.registry import Registry
from retrain.synthetic import FEATURES, NUMERIC_FEATURES, TARGET, DriftPlan, generate
from service.app import create_app
from service.config import Settings
from service.db.engine import make_engine
from service.scheduler import embedded_scheduler

REG_FEATURES = ["age", "income", "tenure_months", "num_products"]  # the regressor predicts `balance`


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def register_tree(registry: Registry, name: str) -> None:
    train = generate(2000, seed=3)
    model = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0)
    model.fit(train[list(NUMERIC_FEATURES)], train[TARGET])
    version = registry.log_and_register(
        name, model, train, features=list(NUMERIC_FEATURES), target=TARGET, run_name="tree"
    )
    registry.promote(name, version.version)


def register_regressor(registry: Registry, name: str) -> None:
    train = generate(2000, seed=4)
    model = Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=1.0))])
    model.fit(train[REG_FEATURES], train["balance"])
    version = registry.log_and_register(
        name, model, train[[*REG_FEATURES, "balance"]], features=REG_FEATURES, target="balance",
        run_name="regressor",
    )  # fmt: skip
    registry.promote(name, version.version)


def serve_and_label(
    client: TestClient, path: str, frame: pd.DataFrame, features: list[str], target: str
) -> list[str]:
    """Predict `frame` in chunks of 100 and send every label; returns the versions that answered."""
    versions: list[str] = []
    for start in range(0, len(frame), 100):
        chunk = frame.iloc[start : start + 100]
        r = client.post(path, json={"instances": chunk[features].to_dict(orient="records")})
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        versions += [p["model_version"] for p in preds]
        items = [
            {"prediction_id": p["prediction_id"], "label": y.item() if hasattr(y, "item") else y}
            for p, y in zip(preds, chunk[target], strict=True)
        ]
        stored = client.post("/v1/feedback", json={"items": items})
        assert stored.status_code == 200 and stored.json()["stored"] == len(items), stored.text
    return versions


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params).all()]


@pytest.mark.parametrize("n_models", [2, 3])
def test_one_model_drifts_and_is_retrained_while_the_others_are_untouched(
    tmp_path: Path, database_url: str, mlflow_server: str, n_models: int
) -> None:
    suffix = uuid.uuid4().hex[:6]  # the PostgreSQL database and the MLflow server are shared
    credit, tree, reg = f"credit-{suffix}", f"tree-{suffix}", f"reg-{suffix}"
    registry = Registry(mlflow_server)
    bootstrap_demo(registry, credit, n_rows=3000)  # a categorical pipeline classifier
    register_tree(registry, tree)  # the default model
    calm = [tree]
    if n_models == 3:
        register_regressor(registry, reg)
        calm.append(reg)
    models_file = tmp_path / "models.toml"
    models_file.write_text(
        f'[models."{credit}"]\nretrain_min_rows = 300\nretrain_window_rows = 1000\n'
        f'[models."{reg}"]\nwindow_rows = 150\nretrain_on_episode = false\n'
    )
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, model_name=tree,
        models=",".join([credit, *calm[1:]]), models_file=str(models_file) if n_models == 3 else "",
        mlflow_tracking_uri=mlflow_server, model_poll_seconds=0.5, drift_check_interval=1.0, window_rows=200,
        min_window_rows=100, performance_window_rows=200, breach_k=2, breach_m=3, retrain_poll_seconds=0.5,
        retrain_min_rows=10_000 if n_models == 3 else 300, retrain_window_rows=1000,
        retrain_cooldown_seconds=0, estimated_performance=False,
    )  # fmt: skip
    app = create_app(settings, registry=registry, extras=(embedded_scheduler,))
    drifting = generate(2000, seed=21, drift=DriftPlan(covariate_at=600, concept_at=600))
    with TestClient(app) as client:
        served = serve_and_label(client, f"/v1/models/{credit}/predict", drifting, list(FEATURES), TARGET)
        assert served.count("1") >= 600
        assert set(serve_and_label(client, "/v1/predict", generate(1000, seed=31), list(NUMERIC_FEATURES),
                                   TARGET)) == {"1"}  # fmt: skip
        if n_models == 3:
            frame = generate(900, seed=41)
            assert set(
                serve_and_label(client, f"/v1/models/{reg}/predict", frame, REG_FEATURES, "balance")
            ) == {"1"}

        engine = make_engine(database_url)

        def promoted() -> bool:
            found = rows(engine, "SELECT status FROM retrain_jobs WHERE model_name = :m", m=credit)
            return ("succeeded",) in found

        wait_until(promoted, 180, f"a successful retrain of {credit}")

        def checked(model: str) -> bool:  # the scheduled checks reached the end of its traffic
            found = rows(
                engine,
                "SELECT kind, count(*) FROM drift_runs WHERE model_name = :m AND trigger = 'schedule' "
                "GROUP BY kind",
                m=model,
            )
            counts = dict(found)
            return counts.get("drift", 0) >= 5 and counts.get("performance", 0) >= 4

        for model in calm:
            wait_until(lambda m=model: checked(m), 60, f"scheduled checks of {model}")  # type: ignore[misc]

        def serves_v2() -> bool:
            one = drifting[list(FEATURES)].iloc[-1].to_dict()
            r = client.post(f"/v1/models/{credit}/predict", json={"features": one})
            return r.status_code == 200 and r.json()["model_version"] == "2"

        wait_until(serves_v2, 15, f"{credit} to serve version 2")
        r = client.post(
            "/v1/predict", json={"features": generate(1, seed=5)[list(NUMERIC_FEATURES)].iloc[0].to_dict()}
        )
        assert r.json()["model_version"] == "1"

    jobs = rows(
        engine,
        "SELECT trigger, result_version, episode_id, status, error FROM retrain_jobs WHERE model_name = :m",
        m=credit,
    )
    # one promotion; the model's episode of the other kind (drift after performance, or the reverse) may
    # open after that job started and ask for one more retrain, of this model only
    (job,) = [j for j in jobs if j[3] == "succeeded"]
    assert all(j[3] != "failed" for j in jobs), jobs
    assert job[:2] == ("episode", "2")
    champion = registry.champion(credit)
    assert champion is not None and champion.version == "2"
    for model in calm:  # untouched: checked, but no episode, no job, no event, champion still v1
        assert rows(engine, "SELECT kind FROM episodes WHERE model_name = :m", m=model) == []
        assert rows(engine, "SELECT id FROM retrain_jobs WHERE model_name = :m", m=model) == []
        assert rows(engine, "SELECT type FROM events WHERE model_name = :m", m=model) == []
        statuses = rows(engine, "SELECT DISTINCT status FROM drift_runs WHERE model_name = :m", m=model)
        assert ("no_drift",) in statuses and ("drift",) not in statuses
        assert registry.champion(model).version == "1"  # type: ignore[union-attr]
    if n_models == 3:  # its own window from the models file; the others the global one
        sizes = rows(
            engine, "SELECT DISTINCT n_rows FROM drift_runs WHERE model_name = :m AND kind = 'drift'", m=reg
        )
        assert sizes == [(150,)]
    sizes = rows(
        engine, "SELECT DISTINCT n_rows FROM drift_runs WHERE model_name = :m AND kind = 'drift'", m=tree
    )
    assert sizes == [(200,)]

    events = rows(engine, "SELECT type, model_name, payload FROM events WHERE model_name IN (:a, :b, :c)",
                  a=credit, b=tree, c=reg)  # fmt: skip
    types = [t for t, m, _ in events if m == credit]
    # the episode that asked for the retrain: drift or performance, whichever the checks saw first
    assert {"drift.detected", "performance.degraded"} & set(types), types
    for expected in ("retrain.started", "retrain.succeeded", "model.promoted"):
        assert expected in types, types
    assert {m for _, m, _ in events} == {credit}
    assert all(orjson.loads(p)["model"]["name"] == m for _, m, p in events)  # every event names its model
    (episode_model,) = {r[0] for r in rows(engine, "SELECT model_name FROM episodes WHERE id = :i", i=job[2])}
    assert episode_model == credit
    engine.dispose()
