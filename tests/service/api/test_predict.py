from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import sqlalchemy as sa

from service.db.engine import make_engine
from tests.support.core import FakeRegistry, sample_records


def logged(database_url: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT * FROM predictions WHERE id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": ids},
        ).mappings()
        out = {r["id"]: dict(r) for r in rows}
    engine.dispose()
    return out


def test_single_record_is_answered_and_logged(make_client: Callable[..., Any], database_url: str) -> None:
    record = sample_records(1)[0]
    with make_client(database_url) as client:
        response = client.post("/v1/predict", json={"features": record})
    assert response.status_code == 200, response.text
    body = response.json()
    (pred,) = body["predictions"]
    assert pred["model_version"] == "1" and body["model_version"] == "1"
    assert pred["prediction"] in (0, 1)
    assert math.isclose(sum(pred["probabilities"].values()), 1.0, abs_tol=1e-5)
    row = logged(database_url, [pred["prediction_id"]])[pred["prediction_id"]]
    assert orjson.loads(row["features"]) == record
    assert orjson.loads(row["output"]) == pred["prediction"]
    assert row["model_name"] == "demo" and row["model_version"] == "1"
    assert orjson.loads(row["probabilities"]) == pred["probabilities"]


def test_batch_and_concurrent_requests_all_logged(make_client: Callable[..., Any], database_url: str) -> None:
    records = sample_records(40, seed=3)
    with make_client(database_url) as client:
        batch = client.post("/v1/predict", json={"instances": records[:20]})
        assert batch.status_code == 200
        with ThreadPoolExecutor(8) as pool:
            singles = list(pool.map(lambda r: client.post("/v1/predict", json={"features": r}), records[20:]))
    ids = [p["prediction_id"] for p in batch.json()["predictions"]]
    ids += [s.json()["predictions"][0]["prediction_id"] for s in singles]
    assert all(s.status_code == 200 for s in singles)
    assert len(set(ids)) == 40
    assert set(logged(database_url, ids)) == set(ids)
    # the same model predicts the same output alone and in a batch
    single_outputs = [s.json()["predictions"][0]["prediction"] for s in singles]
    with make_client(database_url) as client:
        again = client.post("/v1/predict", json={"instances": records[20:]}).json()["predictions"]
    assert [p["prediction"] for p in again] == single_outputs


def test_batch_rows_are_read_back_in_request_order(
    make_client: Callable[..., Any], database_url: str
) -> None:
    # windows are read in (created_at, id) order; drift checks must not depend on random id bits
    records = sample_records(300, seed=4)
    with make_client(database_url) as client:
        response = client.post("/v1/predict", json={"instances": records})
    assert response.status_code == 200, response.text
    ids = [p["prediction_id"] for p in response.json()["predictions"]]
    engine = make_engine(database_url)
    with engine.connect() as conn:
        in_window_order = conn.execute(
            sa.text(
                "SELECT id, features FROM predictions WHERE id IN :ids ORDER BY created_at, id"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": ids},
        ).all()
    engine.dispose()
    assert [r.id for r in in_window_order] == ids
    assert [orjson.loads(r.features) for r in in_window_order] == records


def test_bad_input_names_each_field_and_logs_nothing(
    make_client: Callable[..., Any], sqlite_url: str
) -> None:
    good = sample_records(1)[0]
    bad = dict(good, age="old", extra_col=1)
    del bad["income"]
    nan_record = dict(good, balance=float("nan"))
    with make_client(sqlite_url) as client:
        r = client.post("/v1/predict", json={"instances": [good, bad]})
        assert r.status_code == 422
        locs = {tuple(e["loc"]) for e in r.json()["detail"]}
        assert locs == {
            ("body", "instances", 1, "age"),
            ("body", "instances", 1, "income"),
            ("body", "instances", 1, "extra_col"),
        }
        r = client.post(
            "/v1/predict", content=orjson.dumps({"features": nan_record}, option=orjson.OPT_NON_STR_KEYS)
        )
        assert r.status_code == 422
        r = client.post(
            "/v1/predict", content=b'{"features": {"age": NaN}}', headers={"content-type": "application/json"}
        )
        assert r.status_code == 422
        r = client.post("/v1/predict", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422
        r = client.post("/v1/predict", json={"features": good, "instances": [good]})
        assert r.status_code == 422 and "exactly one" in r.text
        r = client.post("/v1/predict", json={"instances": [good] * 1001})
        assert r.status_code == 413 and "DRIFTLOOP_MAX_BATCH_ROWS" in r.text
        r = client.post("/v1/predict", content=b"x" * 6_000_000, headers={"content-type": "application/json"})
        assert r.status_code == 413
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar() == 0


def test_no_champion_gives_503_then_recovers(
    make_client: Callable[..., Any], sqlite_url: str, fake_registry: FakeRegistry
) -> None:
    fake_registry.champion = None
    record = sample_records(1)[0]
    with make_client(sqlite_url) as client:
        r = client.post("/v1/predict", json={"features": record})
        assert r.status_code == 503 and "champion" in r.json()["detail"]
        assert client.get("/readyz").status_code == 503
        fake_registry.champion = "1"
        import time

        deadline = time.monotonic() + 5
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.post("/v1/predict", json={"features": record}).status_code == 200


def test_hot_swap_logs_new_version(
    make_client: Callable[..., Any], sqlite_url: str, fake_registry: FakeRegistry
) -> None:
    from tests.support.core import train_demo_estimator

    fake_registry.estimators["2"] = train_demo_estimator(seed=7)
    record = sample_records(1)[0]
    with make_client(sqlite_url) as client:
        assert client.post("/v1/predict", json={"features": record}).json()["model_version"] == "1"
        fake_registry.champion = "2"
        import time

        deadline = time.monotonic() + 5
        version = "1"
        while version != "2" and time.monotonic() < deadline:
            r = client.post("/v1/predict", json={"features": record})
            assert r.status_code == 200
            version = r.json()["model_version"]
        assert version == "2"
        pid = r.json()["predictions"][0]["prediction_id"]
    assert logged(sqlite_url, [pid])[pid]["model_version"] == "2"


def test_registry_down_keeps_serving_loaded_model(
    make_client: Callable[..., Any], sqlite_url: str, fake_registry: FakeRegistry
) -> None:
    record = sample_records(1)[0]
    with make_client(sqlite_url) as client:
        holder = client.app.state.runtime.holder  # type: ignore[attr-defined]
        assert holder.last_error is None
        fake_registry.down = True
        import time

        deadline = time.monotonic() + 5
        while holder.last_error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        # the poller saw the outage (and reports it) while the loaded champion keeps serving
        assert holder.last_error is not None and "registry unreachable" in holder.last_error
        r = client.post("/v1/predict", json={"features": record})
        assert r.status_code == 200 and r.json()["model_version"] == "1"
