"""Several models behind one app: each its own champion, batcher and hot swap; one shared log writer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sklearn.pipeline import Pipeline

from retrain.synthetic import FEATURES
from service.app import create_app
from service.config import Settings
from service.db.engine import make_engine
from service.model_settings import ModelsFileError
from tests.support.core import sample_records, train_demo_estimator
from tests.support.models import FakeRegistries

RECORDS = sample_records(40, seed=21)


@pytest.fixture(scope="module")
def other_estimator() -> Pipeline:
    return train_demo_estimator(n_rows=400, seed=7)


def predicted(estimator: Pipeline, records: list[dict[str, Any]]) -> list[Any]:
    return estimator.predict(pd.DataFrame(records, columns=list(FEATURES))).tolist()


@pytest.fixture
def registries(demo_estimator: Pipeline, other_estimator: Pipeline) -> FakeRegistries:
    assert predicted(demo_estimator, RECORDS) != predicted(other_estimator, RECORDS)  # routing shows
    return FakeRegistries(
        {
            "demo": ({"1": demo_estimator}, "1"),
            "churn": ({"1": other_estimator, "2": demo_estimator}, "1"),
            "fraud": ({"2": demo_estimator}, "2"),
        }
    )


@pytest.fixture
def make_app(tmp_path: Path, registries: FakeRegistries) -> Callable[..., Any]:
    @contextmanager
    def factory(database_url: str, **overrides: Any) -> Iterator[TestClient]:
        settings = Settings(
            data_dir=tmp_path,
            database_url=database_url,
            model_name="demo",
            models=overrides.pop("models", "churn, fraud"),
            model_poll_seconds=0.05,
            embedded_scheduler=False,
            **overrides,
        )
        with TestClient(create_app(settings, loader=(registries.resolve, registries.fetch))) as client:
            yield client

    return factory


def logged(url: str) -> dict[tuple[str, str, str], int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT model_name, model_version, endpoint, count(*) FROM predictions "
                "GROUP BY model_name, model_version, endpoint"
            )
        ).all()
    engine.dispose()
    return {(r[0], r[1], r[2]): int(r[3]) for r in rows}


def test_each_model_serves_its_own_champion_and_all_rows_are_logged(
    make_app: Callable[..., Any],
    database_url: str,
    demo_estimator: Pipeline,
    other_estimator: Pipeline,
) -> None:
    before = logged(database_url)  # the PostgreSQL database is shared by the session
    with make_app(database_url) as client:
        r = client.post("/v1/models/churn/predict", json={"instances": RECORDS})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["model_name"], body["model_version"]) == ("churn", "1")
        assert [p["prediction"] for p in body["predictions"]] == predicted(other_estimator, RECORDS)
        r = client.post("/v1/models/fraud/predict", json={"features": RECORDS[0]})
        assert (r.json()["model_name"], r.json()["model_version"]) == ("fraud", "2")
        r = client.post("/v1/predict", json={"instances": RECORDS[:5]})  # the default model
        assert r.json()["model_name"] == "demo"
        r = client.post("/models/churn/invocations", json={"dataframe_records": RECORDS[:7]})
        assert r.json() == {"predictions": predicted(other_estimator, RECORDS[:7])}
        r = client.post("/invocations", json={"dataframe_records": RECORDS[:7]})
        assert r.json() == {"predictions": predicted(demo_estimator, RECORDS[:7])}
        ready = client.get("/readyz").json()
        assert ready["models"] == {"demo": "version 1", "churn": "version 1", "fraud": "version 2"}
    after = logged(database_url)
    new = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert {k: v for k, v in new.items() if v} == {
        ("churn", "1", "predict"): 40,
        ("churn", "1", "invocations"): 7,
        ("fraud", "2", "predict"): 1,
        ("demo", "1", "predict"): 5,
        ("demo", "1", "invocations"): 7,
    }


def test_an_unknown_model_is_a_404_naming_the_served_ones(
    make_app: Callable[..., Any], sqlite_url: str
) -> None:
    with make_app(sqlite_url) as client:
        for method, path, kwargs in (
            ("post", "/v1/models/nope/predict", {"json": {"features": RECORDS[0]}}),
            ("post", "/models/nope/invocations", {"json": {"inputs": RECORDS[:1]}}),
            ("get", "/models/nope/ping", {}),
            ("get", "/models/nope/version", {}),
        ):
            r = getattr(client, method)(path, **kwargs)
            assert r.status_code == 404, (path, r.text)
            assert r.json()["models"] == ["demo", "churn", "fraud"]
            assert "'nope'" in r.json()["detail"] and "demo, churn, fraud" in r.json()["detail"]
    assert logged(sqlite_url) == {}


def test_a_model_without_a_champion_does_not_stop_the_others(
    make_app: Callable[..., Any], sqlite_url: str, registries: FakeRegistries, other_estimator: Pipeline
) -> None:
    registries["fraud"].champion = None
    with make_app(sqlite_url) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text  # the replica keeps serving the others
        assert ready.json()["models"]["fraud"].startswith("not loaded")
        assert client.get("/models/fraud/ping").status_code == 503
        assert client.get("/models/churn/ping").status_code == 200
        r = client.post("/v1/models/fraud/predict", json={"features": RECORDS[0]})
        assert r.status_code == 503 and "fraud" in r.json()["detail"]
        assert client.post("/v1/models/churn/predict", json={"features": RECORDS[0]}).status_code == 200

        # each model hot-swaps on its own: fraud gets a champion, churn moves to version 2
        registries["fraud"].champion = "2"
        registries["churn"].champion = "2"
        deadline = time.monotonic() + 10
        while client.get("/models/fraud/ping").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        while (
            client.post("/v1/models/churn/predict", json={"features": RECORDS[0]}).json()["model_version"]
            != "2"
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert client.post("/v1/models/fraud/predict", json={"features": RECORDS[0]}).status_code == 200
        assert client.post("/v1/predict", json={"features": RECORDS[0]}).json()["model_version"] == "1"
        assert client.get("/readyz").json()["models"] == {
            "demo": "version 1",
            "churn": "version 2",
            "fraud": "version 2",
        }


def test_readiness_fails_only_when_no_model_serves(
    make_app: Callable[..., Any], sqlite_url: str, registries: FakeRegistries
) -> None:
    for name in ("demo", "churn", "fraud"):
        registries[name].champion = None
    with make_app(sqlite_url) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and set(r.json()["models"]) == {"demo", "churn", "fraud"}


def test_the_models_file_adds_models_and_a_bad_key_stops_the_start(
    make_app: Callable[..., Any], sqlite_url: str, tmp_path: Path
) -> None:
    good = tmp_path / "models.toml"
    good.write_text("[models.fraud]\nwindow_rows = 500\n")
    with make_app(sqlite_url, models="churn", models_file=str(good)) as client:
        assert client.get("/readyz").json()["models"] == {
            "demo": "version 1",
            "churn": "version 1",
            "fraud": "version 2",
        }
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        assert runtime.settings_for("fraud").window_rows == 500
        assert runtime.settings_for("churn").window_rows == runtime.settings.window_rows
    bad = tmp_path / "bad.toml"
    bad.write_text("[models.fraud]\nwindow_rowz = 500\n")
    with pytest.raises(ModelsFileError, match=r"\[models.fraud\] unknown key 'window_rowz'.*'window_rows'"):
        make_app(sqlite_url, models_file=str(bad)).__enter__()


def test_the_predict_token_guards_named_models_before_the_lookup(
    make_app: Callable[..., Any], sqlite_url: str
) -> None:
    token = "prd-0a1b2c3d4e5f6a7b8c9d"
    good = {"Authorization": f"Bearer {token}"}
    with make_app(sqlite_url, predict_token=token) as client:
        for path, body in (
            ("/v1/models/nope/predict", {"features": RECORDS[0]}),
            ("/models/nope/invocations", {"inputs": RECORDS[:1]}),
            ("/v1/models/churn/predict", {"features": RECORDS[0]}),
            ("/models/churn/invocations", {"inputs": RECORDS[:1]}),
        ):
            r = client.post(path, json=body)
            assert r.status_code == 401 and "churn" not in r.text, (path, r.text)  # no model list leaked
            expected = 404 if "nope" in path else 200
            assert client.post(path, json=body, headers=good).status_code == expected, path
