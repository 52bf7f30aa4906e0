"""Hostile input: schemathesis over every operation of /openapi.json, then hand-picked nasty bodies.

Every answer must be a documented, schema-conforming non-5xx; accepted input must be stored intact.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from retrain.registry import Registry
from service.app import create_app
from service.config import Settings
from service.db.engine import upgrade
from service.serving.holder import LoadedModel
from tests.service.api.test_predict import logged
from tests.support.core import FakeRegistry, sample_records, train_demo_estimator

ADMIN_TOKEN = "hostile-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
JSON = {"content-type": "application/json"}

# The app is built at import (schemathesis needs its schema to parametrize); the database is migrated and the
# estimator trained only when the first case runs. An empty MLflow store makes /v1/models answer, not 503.
_TMP = Path(tempfile.mkdtemp(prefix="driftloop-hostile-"))
_DB = f"sqlite:///{_TMP / 'driftloop.db'}"
_FAKE = FakeRegistry("demo", {}, "1")


def _fetch(name: str, version: str) -> LoadedModel:
    if version not in _FAKE.estimators:
        _FAKE.estimators[version] = train_demo_estimator(500)
    return _FAKE.fetch(name, version)


_SETTINGS = Settings(
    data_dir=_TMP, database_url=_DB, model_name="demo", embedded_scheduler=False, admin_token=ADMIN_TOKEN
)
_REGISTRY = Registry(f"sqlite:///{_TMP / 'mlflow.db'}", artifact_location=str(_TMP / "artifacts"))
APP = create_app(_SETTINGS, loader=(_FAKE.resolve, _fetch), registry=_REGISTRY)
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP

# Response-side checks only. Left out on purpose: positive_data_acceptance (the OpenAPI body of /v1/predict is
# `dict[str, Any]`; the model signature decides, so schema-valid bodies get 422 by design) and
# negative_data_rejection / unsupported_method (request strictness, e.g. pydantic's lax datetime-from-int).
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module", autouse=True)
def _database() -> Iterator[None]:
    upgrade(_DB)
    yield
    from schemathesis.python.asgi import shutdown_lifespans

    shutdown_lifespans()
    shutil.rmtree(_TMP, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_answers_within_its_schema(case: Any) -> None:
    case.call_and_validate(headers=ADMIN, checks=CHECKS)


# --- hand-picked bodies, on SQLite and PostgreSQL ---


def _record() -> dict[str, Any]:
    return sample_records(1, seed=5)[0]


def _category(record: dict[str, Any]) -> str:
    return next(k for k, v in record.items() if isinstance(v, str))


def _assert_4xx(response: Any, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    assert "detail" in response.json()


def test_body_and_batch_limits(make_client: Callable[..., Any], sqlite_url: str) -> None:
    record = _record()
    with make_client(sqlite_url, max_body_bytes=64_000, max_batch_rows=10) as client:
        big = json.dumps({"instances": [record] * 1000})
        assert len(big) > 64_000
        for path, body in (("/v1/predict", big), ("/invocations", big.replace("instances", "inputs", 1))):
            r = client.post(path, content=big if path == "/v1/predict" else body, headers=JSON)
            _assert_4xx(r, 413)
            assert "DRIFTLOOP_MAX_BODY_BYTES" in r.json()["detail"]
        r = client.post("/v1/predict", json={"instances": [record] * 11})
        _assert_4xx(r, 413)
        assert "DRIFTLOOP_MAX_BATCH_ROWS=10" in r.json()["detail"]
        _assert_4xx(client.post("/invocations", json={"dataframe_records": [record] * 11}), 413)
        assert client.post("/v1/predict", json={"instances": [record] * 10}).status_code == 200
    assert logged_count(sqlite_url) == 10  # refused requests logged nothing


def logged_count(url: str) -> int:
    import sqlalchemy as sa

    from service.db.engine import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one())
    engine.dispose()
    return n


def test_long_and_unicode_category_values_are_stored_intact(
    make_client: Callable[..., Any], database_url: str
) -> None:
    record = _record()
    cat = _category(record)
    values = ["é" * 500_000, "Zürich 東京 🚀 \u200b\u202e ﷽", 'a\tb\nc"d\\e']  # 1 MB of UTF-8, mixed scripts
    with make_client(database_url) as client:
        ids = []
        for value in values:
            r = client.post("/v1/predict", json={"features": {**record, cat: value}})
            assert r.status_code == 200, r.text[:300]
            ids.append(r.json()["predictions"][0]["prediction_id"])
        r = client.post("/invocations", json={"dataframe_split": {"columns": list(record), "data": [
            [values[1] if k == cat else v for k, v in record.items()]
        ]}})  # fmt: skip
        assert r.status_code == 200, r.text[:300]
    rows = logged(database_url, ids)
    for pid, value in zip(ids, values, strict=True):
        assert orjson.loads(rows[pid]["features"]) == {**record, cat: value}


@pytest.mark.parametrize("path", ["/v1/predict", "/invocations", "/v1/feedback"])
def test_deeply_nested_json_is_refused(make_client: Callable[..., Any], sqlite_url: str, path: str) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    with make_client(sqlite_url) as client:
        for body in (
            deep,
            '{"instances": ' + deep + "}",
            '{"features": ' + '{"a": ' * 10_000 + "1" + "}" * 10_001,
        ):
            _assert_4xx(client.post(path, content=body, headers=JSON))
        assert client.get("/healthz").status_code == 200  # the worker survived
    assert logged_count(sqlite_url) == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_non_finite_numbers_are_refused(
    make_client: Callable[..., Any], sqlite_url: str, literal: str
) -> None:
    record = _record()
    marker = 123456.75
    record["age"] = marker
    with make_client(sqlite_url) as client:
        r = client.post("/v1/predict", content=json.dumps({"features": record}).replace(str(marker), literal),
                        headers=JSON)  # fmt: skip
        _assert_4xx(r, 422)
        assert r.json()["detail"][0]["loc"] == ["body", "features", "age"]
        body = json.dumps({"dataframe_records": [record]}).replace(str(marker), literal)
        _assert_4xx(client.post("/invocations", content=body, headers=JSON), 422)
    assert logged_count(sqlite_url) == 0


def test_nul_bytes_and_lone_surrogates_are_refused(
    make_client: Callable[..., Any], database_url: str
) -> None:
    record = _record()
    cat = _category(record)
    with make_client(database_url) as client:
        pid = client.post("/v1/predict", json={"features": record}).json()["predictions"][0]["prediction_id"]
        raw = json.dumps({"features": {**record, cat: "MARK"}})
        for bad in ("a\\u0000b", "\\ud800", "x\\udfffy"):
            r = client.post("/v1/predict", content=raw.replace("MARK", bad), headers=JSON)
            _assert_4xx(r, 422)
            assert r.json()["detail"][0]["loc"] == ["body", "features", cat]
            inv = json.dumps({"instances": [{**record, cat: "MARK"}]}).replace("MARK", bad)
            _assert_4xx(client.post("/invocations", content=inv, headers=JSON), 422)
        for body in ('{"\\ud800": 1}', '{"features": {"\\udc00": 1}}',
                     '{"items": [{"prediction_id": "\\ud800", "label": 1}]}',
                     '{"items": [{"prediction_id": "' + pid + '", "label": "\\ud800"}]}'):  # fmt: skip
            path = "/v1/feedback" if "items" in body else "/v1/predict"
            _assert_4xx(client.post(path, content=body, headers=JSON), 422)
        # a NUL inside a string label is valid JSON and stored as JSON text, so it round-trips
        r = client.post("/v1/feedback", json={"items": [{"prediction_id": pid, "label": "a\x00b"}]})
        assert r.status_code == 200 and r.json()["stored"] == 1
    assert list(logged(database_url, [pid])) == [pid]
    assert _label(database_url, pid) == "a\x00b"


def _label(url: str, pid: str) -> Any:
    import sqlalchemy as sa

    from service.db.engine import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        raw = conn.execute(
            sa.text("SELECT label FROM feedback WHERE prediction_id = :p"), {"p": pid}
        ).scalar_one()
    engine.dispose()
    return orjson.loads(raw)


def test_duplicate_keys_last_one_wins(make_client: Callable[..., Any], sqlite_url: str) -> None:
    record = _record()
    body = json.dumps({"features": record})
    # {"features": {..., "age": <first>, ..., "age": 99.5}}: the JSON parsers keep the last occurrence
    dup = body[:-2] + ', "age": 99.5}}'
    with make_client(sqlite_url) as client:
        r = client.post("/v1/predict", content=dup, headers=JSON)
        assert r.status_code == 200, r.text
        pid = r.json()["predictions"][0]["prediction_id"]
        inv = json.dumps({"dataframe_records": [record]})[:-3] + ', "age": 99.5}]}'
        r2 = client.post("/invocations", content=inv, headers=JSON)
        assert r2.status_code == 200, r2.text
        # a duplicated top-level key that switches shape is still exactly one of features/instances
        _assert_4xx(client.post("/v1/predict", content=body[:-1] + ', "features": {}}', headers=JSON), 422)
    assert orjson.loads(logged(sqlite_url, [pid])[pid]["features"]) == {**record, "age": 99.5}
