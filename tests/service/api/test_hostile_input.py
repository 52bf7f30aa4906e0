"""Hostile input: hand-picked nasty bodies (the schemathesis run over every operation is test_contract.py).

Every answer must be a documented, schema-conforming non-5xx; accepted input must be stored intact.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from service.serving.holder import LoadedModel
from service.serving.records import Column
from tests.service.api.test_predict import logged
from tests.support.core import DEMO_COLUMNS, FakeRegistry, sample_records

ADMIN_TOKEN = "hostile-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
JSON = {"content-type": "application/json"}

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


# --- numbers the model's dtype cannot hold (issue 14, findings 1 and 2): a 422 naming the field ---

HUGE_INT = "1" + "0" * 400  # a JSON integer: finite as text, infinite as a double


@pytest.mark.parametrize(
    ("feature", "literal", "kind"),
    [
        ("age", "1e308", "less_than_equal"),  # finite, but squares overflow in any scaler
        ("age", "-1e16", "less_than_equal"),
        ("age", HUGE_INT, "finite_number"),  # OverflowError in math.isfinite before
        ("age", "-" + HUGE_INT, "finite_number"),
        ("num_products", str(2**63), "int_range"),  # stored as given before
        ("num_products", str(2**64), "int_range"),  # the row encoder's TypeError (a 500) before
        ("num_products", str(-(2**63) - 1), "int_range"),
        ("num_products", "1e300", "int_range"),
        ("num_products", "1e19", "int_range"),
        ("num_products", HUGE_INT, "int_range"),
        ("num_products", str(10**16), "less_than_equal"),
    ],
)
def test_numbers_outside_the_dtype_or_the_bound_are_refused(
    make_client: Callable[..., Any], sqlite_url: str, feature: str, literal: str, kind: str
) -> None:
    record = _record()
    marker = 987654.25
    record[feature] = marker
    with make_client(sqlite_url) as client:
        body = json.dumps({"features": record}).replace(str(marker), literal)
        r = client.post("/v1/predict", content=body, headers=JSON)
        _assert_4xx(r, 422)
        (error,) = r.json()["detail"]
        assert error["loc"] == ["body", "features", feature] and error["type"] == kind, error
        inv = json.dumps({"dataframe_split": {"columns": list(record), "data": [list(record.values())]}})
        r = client.post("/invocations", content=inv.replace(str(marker), literal), headers=JSON)
        _assert_4xx(r, 422)  # orjson reads some of these as doubles, or refuses them as JSON
        assert client.get("/healthz").status_code == 200
    assert logged_count(sqlite_url) == 0


def test_the_bound_is_a_setting_and_int64_still_holds(
    make_client: Callable[..., Any], sqlite_url: str
) -> None:
    record = _record()
    with make_client(sqlite_url, max_abs_feature=1e300) as client:
        ok = client.post(
            "/v1/predict", json={"features": {**record, "num_products": 2**63 - 1, "age": 1e299}}
        )
        assert ok.status_code == 200, ok.text
        r = client.post("/v1/predict", json={"features": {**record, "num_products": 2**63}})
        _assert_4xx(r, 422)
        assert r.json()["detail"][0]["type"] == "int_range"
    with make_client(sqlite_url, max_abs_feature=100) as client:
        r = client.post("/v1/predict", json={"features": {**record, "age": 100.5}})
        _assert_4xx(r, 422)
        assert "DRIFTLOOP_MAX_ABS_FEATURE" in r.json()["detail"][0]["msg"]
    assert logged_count(sqlite_url) == 1


def test_float32_and_int32_columns_hold_only_what_their_dtype_can(
    make_client: Callable[..., Any],
    sqlite_url: str,
    fake_registry: FakeRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A signature's `float` is float32 (above 3.4e38 it is inf) and its `integer` is int32."""
    narrow = {"age": "float", "num_products": "integer"}
    columns = tuple(Column(c.name, narrow.get(c.name, c.type), c.required) for c in DEMO_COLUMNS)
    fetch = fake_registry.fetch

    def narrow_fetch(name: str, version: str) -> LoadedModel:
        return dataclasses.replace(fetch(name, version), columns=columns)

    monkeypatch.setattr(fake_registry, "fetch", narrow_fetch)
    record = _record()
    with make_client(sqlite_url, max_abs_feature=1e300) as client:
        for feature, value, kind in (
            ("age", 1e39, "finite_number"), ("age", -1e39, "finite_number"),
            ("num_products", 2**31, "int_range"), ("num_products", -(2**31) - 1, "int_range"),
        ):  # fmt: skip
            r = client.post("/v1/predict", json={"features": {**record, feature: value}})
            _assert_4xx(r, 422)
            (error,) = r.json()["detail"]
            assert error["loc"] == ["body", "features", feature] and error["type"] == kind, error
            assert narrow[feature] in error["msg"]
        for feature, value in (("age", 3.0e38), ("num_products", 2**31 - 1)):
            ok = client.post("/v1/predict", json={"features": {**record, feature: value}})
            assert ok.status_code == 200, ok.text[:300]
    assert logged_count(sqlite_url) == 2


def test_a_model_never_scores_what_cannot_be_logged(
    make_client: Callable[..., Any], sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation runs before the model: a refused request never reaches the micro-batcher."""
    from service.serving.batcher import MicroBatcher

    calls: list[int] = []
    original = MicroBatcher.predict

    async def counting(self: MicroBatcher, rows: list[dict[str, Any]]) -> Any:
        calls.append(len(rows))
        return await original(self, rows)

    monkeypatch.setattr(MicroBatcher, "predict", counting)
    record = _record()
    with make_client(sqlite_url) as client:
        for value in (2**64, 2**63, 1e300):
            r = client.post("/v1/predict", json={"features": {**record, "num_products": value}})
            _assert_4xx(r, 422)
        assert calls == []
        assert client.post("/v1/predict", json={"features": record}).status_code == 200
    assert calls == [1] and logged_count(sqlite_url) == 1


@pytest.mark.parametrize(
    "split",
    [
        {"columns": [[1]], "data": [[1]]},  # unhashable: a 500 before
        {"columns": [1, "age"], "data": [[1, 2]]},
        {"columns": [None], "data": [[1]]},
        {"columns": ["age", "age"], "data": [[1, 2]]},
    ],
)
def test_column_names_must_be_strings_given_once(
    make_client: Callable[..., Any], sqlite_url: str, split: dict[str, Any]
) -> None:
    with make_client(sqlite_url) as client:
        r = client.post("/invocations", json={"dataframe_split": split})
        _assert_4xx(r, 422)
        assert r.json()["detail"][0]["loc"][:3] == ["body", "dataframe_split", "columns"]
    assert logged_count(sqlite_url) == 0


# --- feedback, ids and versions at the edges ---


def _one_prediction(client: Any) -> str:
    r = client.post("/v1/predict", json={"features": _record()})
    return str(r.json()["predictions"][0]["prediction_id"])


def test_feedback_labels_outside_the_bounds_are_refused(
    make_client: Callable[..., Any], database_url: str
) -> None:
    with make_client(database_url) as client:
        pid = _one_prediction(client)
        for label in ("2**64", "2**63", "-(2**63)-1", "1e308", "10**16"):
            body = f'{{"items": [{{"prediction_id": "{pid}", "label": {eval(label)}}}]}}'  # noqa: S307
            r = client.post("/v1/feedback", content=body, headers=JSON)
            _assert_4xx(r, 422)
            assert r.json()["detail"][0]["loc"][:4] == ["body", "items", 0, "label"], (label, r.text)
        r = client.post("/v1/feedback", json={"items": [{"prediction_id": pid, "label": "x" * 201}]})
        _assert_4xx(r, 422)
        ok = client.post("/v1/feedback", json={"items": [{"prediction_id": pid, "label": "x" * 200}]})
        assert ok.status_code == 200 and ok.json()["stored"] == 1
        big = {"items": [{"prediction_id": pid, "label": 1}] * 10_001}
        r = client.post("/v1/feedback", json=big)
        _assert_4xx(r, 422)
        assert r.json()["detail"][0]["loc"] == ["body", "items"]
    assert _label(database_url, pid) == "x" * 200  # nothing refused was stored


@pytest.mark.parametrize(
    "path",
    [
        "/v1/drift/runs/2147483648",
        "/v1/drift/runs/9223372036854775808",
        "/v1/drift/runs/0",
        "/v1/drift/runs/2147483648/report.html",
        "/v1/retrain/jobs/18446744073709551616",
        "/v1/webhooks/2147483648",
        "/v1/webhooks/1/deliveries?offset=9223372036854775808",
        "/v1/drift/runs?offset=10000001",
        "/v1/drift/runs?limit=9223372036854775808",
    ],
)
def test_ids_and_offsets_beyond_the_database_range_are_422(
    make_client: Callable[..., Any], sqlite_url: str, path: str
) -> None:
    with make_client(sqlite_url, admin_token=ADMIN_TOKEN) as client:
        _assert_4xx(client.get(path, headers=ADMIN), 422)


@pytest.mark.parametrize("version", ["1.5", "abc", "1e3", "-1", "", "9" * 19, 2])
def test_a_model_version_that_is_not_an_integer_is_422(
    make_client: Callable[..., Any], sqlite_url: str, version: Any
) -> None:
    with make_client(sqlite_url, admin_token=ADMIN_TOKEN) as client:
        r = client.post("/v1/drift/check", headers=ADMIN, json={"model_version": version})
        _assert_4xx(r, 422)
        assert r.json()["detail"][0]["loc"] == ["body", "model_version"]


# --- the body limit without Content-Length, the self-delivery guard, Allow, metrics ---


def _counted(client: Any, endpoint: str, status: int) -> float:
    """driftloop_requests_total of one endpoint and status, summed over its other labels."""
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("driftloop_requests_total{") and f'endpoint="{endpoint}"' in line \
                and f'status="{status}"' in line:  # fmt: skip
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_streamed_body_over_the_limit_is_413_and_counted(
    make_client: Callable[..., Any], sqlite_url: str
) -> None:
    record = json.dumps(_record()).encode()
    body = b'{"instances": [' + b",".join([record] * 1000) + b"]}"
    assert len(body) > 64_000

    def chunks() -> Iterator[bytes]:  # a generator: sent chunked, no Content-Length
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    with make_client(sqlite_url, max_body_bytes=64_000) as client:
        for path, name in (
            ("/v1/predict", "predict"),
            ("/invocations", "invocations"),
            ("/v1/feedback", "feedback"),
        ):
            before = _counted(client, name, 413)
            r = client.post(path, content=chunks(), headers=JSON)
            assert r.request.headers.get("content-length") is None
            _assert_4xx(r, 413)
            assert "DRIFTLOOP_MAX_BODY_BYTES" in r.json()["detail"]
            assert _counted(client, name, 413) == before + 1
            before = _counted(client, name, 413)
            _assert_4xx(client.post(path, content=body, headers=JSON), 413)  # by Content-Length
            assert _counted(client, name, 413) == before + 1
    assert logged_count(sqlite_url) == 0


def test_refused_requests_are_counted(make_client: Callable[..., Any], sqlite_url: str) -> None:
    with make_client(sqlite_url, predict_token="p-token-1234567890") as client:
        before = {s: _counted(client, "predict", s) for s in (401, 422)}
        client.post("/v1/predict", json={})
        client.post("/v1/predict", json={}, headers={"Authorization": "Bearer p-token-1234567890"})
        assert _counted(client, "predict", 401) == before[401] + 1
        assert _counted(client, "predict", 422) == before[422] + 1


def test_a_signed_webhook_delivery_can_never_call_the_api(
    make_client: Callable[..., Any], sqlite_url: str
) -> None:
    """Whatever URL or proxy a webhook points at, its delivery cannot act on the API (finding 4's loop)."""
    with make_client(sqlite_url, admin_open=True) as client:
        r = client.post("/v1/models/rollback", json={}, headers={"X-Driftloop-Signature": "sha256=00"})
        _assert_4xx(r, 403)
        assert "webhook deliveries" in r.json()["detail"]


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/webhooks", "GET, HEAD, POST"),
        ("/v1/webhooks/1", "DELETE, GET, HEAD, PATCH"),
        ("/v1/predict", "POST"),
        ("/v1/drift/runs/1", "GET, HEAD"),
    ],
)
def test_405_lists_every_method_of_the_path(
    make_client: Callable[..., Any], sqlite_url: str, path: str, allowed: str
) -> None:
    with make_client(sqlite_url, admin_token=ADMIN_TOKEN) as client:
        for method in ("OPTIONS", "PUT", "TRACE"):
            r = client.request(method, path, headers=ADMIN)
            if method in allowed:
                continue
            assert r.status_code == 405 and r.headers["allow"] == allowed, (method, r.headers)


# --- what the published schema says is what is enforced (finding 7) ---

T0 = "2026-01-01T00:00:00Z"


def test_cross_field_rules_are_in_the_schema_or_valid(
    make_client: Callable[..., Any], sqlite_url: str
) -> None:
    with make_client(sqlite_url, admin_token=ADMIN_TOKEN) as client:
        spec = client.get("/openapi.json").json()["components"]["schemas"]
        assert "oneOf" in spec["PredictRequest"] and "anyOf" in spec["CheckRequest"]
        # an empty range is a valid question: an empty answer (a 422 the schema did not announce, before)
        r = client.get("/v1/drift/runs", params={"since": T0, "until": T0}, headers=ADMIN)
        assert r.status_code == 200 and r.json()["items"] == []
        # an empty window to act on: nothing to do, like a window without traffic
        r = client.post("/v1/drift/check", json={"start": T0, "end": T0}, headers=ADMIN)
        _assert_4xx(r, 409)
        r = client.post(
            "/v1/retrain", json={"reason": "x", "window_start": T0, "window_end": T0}, headers=ADMIN
        )
        _assert_4xx(r, 409)
        # rules the schema states: a 422 for what it calls invalid
        _assert_4xx(client.post("/v1/drift/check", json={"last_n": 5, "start": T0}, headers=ADMIN), 422)
        # a boolean is no integer and 1 is no boolean here, as the schema says (schemathesis' long run)
        _assert_4xx(client.post("/v1/drift/check", json={"last_n": True, "end": None}, headers=ADMIN), 422)
        _assert_4xx(client.post("/v1/drift/check", json={"last_n": "5"}, headers=ADMIN), 422)
        r = client.post("/v1/drift/check", json={"last_n": 5.0}, headers=ADMIN)  # an integer to JSON Schema
        assert r.status_code != 422, r.text
        _assert_4xx(client.post("/v1/retrain", json={"reason": "x", "force": 1}, headers=ADMIN), 422)
        _assert_4xx(client.patch("/v1/webhooks/1", json={"enabled": "yes"}, headers=ADMIN), 422)
        _assert_4xx(client.post("/v1/models/rollback", content=b"\xff|\xfer", headers={**ADMIN, **JSON}), 400)
        _assert_4xx(client.post("/v1/predict", json={"features": None, "instances": []}), 422)
        _assert_4xx(client.post("/invocations", content=b"", headers=JSON), 422)
        for url in ("", "ftp://x", "http://"):
            body = {"url": url, "event_types": ["*"]}
            _assert_4xx(client.post("/v1/webhooks", json=body, headers=ADMIN), 422)


@pytest.mark.parametrize("value", ["0", "0.5", "1700000000", "2026-01-01T00:00:00", "2026-01-01", "x"])
def test_timestamps_are_rfc3339_with_an_offset(
    make_client: Callable[..., Any], sqlite_url: str, value: str
) -> None:
    with make_client(sqlite_url, admin_token=ADMIN_TOKEN) as client:
        r = client.get("/v1/drift/runs", params={"until": value}, headers=ADMIN)
        _assert_4xx(r, 422)
        assert r.json()["detail"][0]["loc"] == ["query", "until"]
        for number in (0, 1700000000.5):
            body = {"reason": "x", "window_start": number}
            _assert_4xx(client.post("/v1/retrain", json=body, headers=ADMIN), 422)
            _assert_4xx(client.post("/v1/drift/check", json={"start": number}, headers=ADMIN), 422)
        assert client.get("/v1/drift/runs", params={"until": T0}, headers=ADMIN).status_code == 200
