"""MLflow's own ScoringServerClient against driftloop under a real uvicorn: every payload format."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mlflow
import pandas as pd
import pytest
import requests
import sqlalchemy as sa
from mlflow.pyfunc.scoring_server import parse_csv_input
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

from service.api.schemas.invocations import parse_csv
from service.config import Settings
from service.db.engine import make_engine
from tests.browser.server import serve
from tests.service.api.test_invocations import count
from tests.support.core import DEMO_COLUMNS, FEATURES, FakeRegistry, sample_records


def _settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        model_name="demo",
        model_poll_seconds=0.05,
        embedded_scheduler=False,
    )


@pytest.fixture
def live(tmp_path: Path, database_url: str, fake_registry: FakeRegistry) -> Iterator[tuple[str, str]]:
    for base in serve(_settings(tmp_path, database_url), fake_registry):
        yield base, database_url


def _client(base: str) -> ScoringServerClient:
    parts = urlsplit(base)
    return ScoringServerClient(parts.hostname, parts.port)


@pytest.fixture
def two_models(
    tmp_path: Path, database_url: str, demo_estimator: Any
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The default model `demo` and a named model `churn` with another estimator, under uvicorn."""
    from tests.support.core import train_demo_estimator
    from tests.support.models import FakeRegistries

    estimators = {"demo": demo_estimator, "churn": train_demo_estimator(n_rows=400, seed=7)}
    registries = FakeRegistries(
        {"demo": ({"1": estimators["demo"]}, "1"), "churn": ({"3": estimators["churn"]}, "3")}
    )
    settings = _settings(tmp_path, database_url).model_copy(update={"models": "churn"})
    for base in serve(settings, registries):  # type: ignore[arg-type]
        yield base, database_url, estimators


@pytest.mark.parametrize("model", ["demo", "churn"])
def test_mlflow_client_scores_every_json_shape(
    two_models: tuple[str, str, dict[str, Any]], model: str
) -> None:
    """The default model at the root, a named one with the path given after the port: the client as is."""
    base, url, estimators = two_models
    parts = urlsplit(base)
    client = ScoringServerClient(
        parts.hostname, parts.port if model == "demo" else f"{parts.port}/models/{model}"
    )
    before = count(url, "invocations")  # the PostgreSQL database is shared by the session
    client.wait_server_ready(timeout=10)
    assert client.get_version() == mlflow.__version__
    records = sample_records(40, seed=21)
    frame = pd.DataFrame(records, columns=list(FEATURES))
    expected = estimators[model].predict(frame).tolist()
    other = estimators["churn" if model == "demo" else "demo"].predict(frame).tolist()
    assert expected != other  # the answers show which model scored
    columns = list(FEATURES)
    payloads: list[object] = [
        frame,  # the client sends dataframe_split
        records,  # the client sends {"inputs": [records]}
        json.dumps({"dataframe_records": records}),
        json.dumps({"dataframe_split": frame.to_dict(orient="split")}),
        json.dumps({"instances": records}),
        json.dumps({"inputs": {c: [r[c] for r in records] for c in columns}}),
    ]
    for payload in payloads:
        answer = client.invoke(payload)
        assert answer["predictions"] == expected, type(payload)
        assert answer.get_predictions()[0].tolist() == expected
    one = client.invoke(json.dumps({"inputs": records[0]}))  # a dict of scalars is one record (MLflow)
    assert one["predictions"] == expected[:1]
    # params are accepted and ignored (scikit-learn models take none), as MLflow's sklearn flavor does
    assert client.invoke(frame, params={"threshold": 0.9})["predictions"] == expected
    assert count(url, "invocations") - before == 40 * len(payloads) + 1 + 40


def _logged(url: str, model: str) -> int:
    """The model's rows logged through the MLflow scoring route."""
    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(
            sa.text("SELECT count(*) FROM predictions WHERE endpoint = 'invocations' AND model_name = :m"),
            {"m": model},
        ).scalar_one()
    engine.dispose()
    return int(n)


@pytest.mark.parametrize("model", ["demo", "churn"])
def test_csv_and_parquet_bodies_score_like_json(
    two_models: tuple[str, str, dict[str, Any]], model: str
) -> None:
    """`/invocations` (the default model) and `/models/churn/invocations`: CSV and Parquet bodies, the
    rows logged under the model that scored them."""
    base, url, estimators = two_models
    route = f"{base}/invocations" if model == "demo" else f"{base}/models/{model}/invocations"
    other_model = "churn" if model == "demo" else "demo"
    before, other_before = _logged(url, model), _logged(url, other_model)
    records = sample_records(40, seed=5)
    frame = pd.DataFrame(records, columns=list(FEATURES))
    expected = estimators[model].predict(frame).tolist()
    assert expected != estimators[other_model].predict(frame).tolist()  # the answer shows which scored
    shuffled = frame[list(reversed(FEATURES))]  # the header row names the columns, in any order
    for content_type in ("text/csv", "text/csv; charset=utf-8"):
        r = requests.post(route, data=shuffled.to_csv(index=False), headers={"Content-Type": content_type})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
        assert r.json() == {"predictions": expected}
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    r = requests.post(
        route, data=parquet.getvalue(), headers={"Content-Type": "application/vnd.apache.parquet"}
    )
    assert r.status_code == 200 and r.json() == {"predictions": expected}, r.text
    body = {"dataframe_records": records, "params": {"threshold": 0.5}}
    r = requests.post(route, json=body)  # params in a JSON body, as MLflow's sklearn flavor: ignored
    assert r.status_code == 200 and r.json() == {"predictions": expected}, r.text
    assert (_logged(url, model) - before, _logged(url, other_model)) == (40 * 4, other_before)


def test_bad_csv_and_content_types_are_4xx_and_not_logged(live: tuple[str, str]) -> None:
    base, url = live
    before = count(url, "invocations")
    frame = pd.DataFrame(sample_records(2), columns=list(FEATURES))
    frame.loc[1, "age"] = None  # an empty cell: a missing required value
    r = requests.post(
        f"{base}/invocations", data=frame.to_csv(index=False), headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "csv", 1, "age"], r.text
    cases = {
        "text/csv": (b"", 422),
        "text/plain": (b"age\n1", 415),
        "text/csv; charset=latin-1": (b"age\n1", 415),
        "application/json; format=pandas-split": (b"{}", 415),
        "application/json": (b'{"dataframe_records": [{}], "params": [1]}', 422),
    }
    for content_type, (body, status) in cases.items():
        r = requests.post(f"{base}/invocations", data=body, headers={"Content-Type": content_type})
        assert r.status_code == status, (content_type, r.status_code, r.text)
    assert count(url, "invocations") == before


def test_ping_is_503_until_a_champion_is_loaded(tmp_path: Path, sqlite_url: str) -> None:
    from tests.support.core import train_demo_estimator

    registry = FakeRegistry("demo", {"1": train_demo_estimator(500)}, None)
    for base in serve(_settings(tmp_path, sqlite_url), registry):
        client = _client(base)
        for path in ("/ping", "/health"):
            r = requests.get(base + path)
            assert r.status_code == 503 and r.text == "\n"
        with pytest.raises(RuntimeError, match="not ready"):
            client.wait_server_ready(timeout=0.5)
        registry.champion = "1"  # the holder's poll loads it
        client.wait_server_ready(timeout=10)
        for path in ("/ping", "/health"):
            r = requests.get(base + path)
            assert (r.status_code, r.text, r.headers["content-type"]) == (200, "\n", "application/json")
        assert requests.get(base + "/healthz").status_code == 200  # the project's own probes stay
        assert requests.get(base + "/readyz").status_code == 200


def test_csv_records_match_mlflow_parsing() -> None:
    """Our CSV reading agrees with MLflow's `parse_csv_input` (header row = columns, quoting, NaN)."""
    text = (
        "region,age,income,tenure_months,balance,num_products,channel,plan\n"
        '"north, upper",30,1.5,2,3,1,web,01\n'
        "007,,2.5,3,4,2,app,02\n"
    )
    ours = parse_csv(text.encode(), DEMO_COLUMNS).records
    theirs = parse_csv_input(io.StringIO(text), schema=None).to_dict(orient="records")
    assert ours[0] == dict(theirs[0], plan="01")
    assert ours[1]["age"] is None and pd.isna(theirs[1]["age"])
    # a string column keeps its text, as MLflow reads it when given the signature's types
    assert (ours[1]["region"], ours[1]["plan"], theirs[1]["plan"]) == ("007", "02", 2)
    skip = ("age", "region", "plan")
    assert {k: v for k, v in ours[1].items() if k not in skip} == {
        k: v for k, v in theirs[1].items() if k not in skip
    }


def test_mlflow_client_scores_a_named_model(
    tmp_path: Path, sqlite_url: str, demo_estimator: Any, fake_registry: FakeRegistry
) -> None:
    """`ScoringServerClient(host, f"{port}/models/{name}")`: MLflow's client, unchanged, for one model."""
    from tests.support.core import train_demo_estimator
    from tests.support.models import FakeRegistries

    other = train_demo_estimator(n_rows=400, seed=7)
    registries = FakeRegistries({"demo": ({"1": demo_estimator}, "1"), "churn": ({"3": other}, "3")})
    settings = _settings(tmp_path, sqlite_url).model_copy(update={"models": "churn"})
    records = sample_records(30, seed=4)
    frame = pd.DataFrame(records, columns=list(FEATURES))
    for base in serve(settings, registries):  # type: ignore[arg-type]
        parts = urlsplit(base)
        client = ScoringServerClient(parts.hostname, f"{parts.port}/models/churn")
        client.wait_server_ready(timeout=10)
        assert client.get_version() == mlflow.__version__
        assert client.invoke(frame)["predictions"] == other.predict(frame).tolist()
        assert client.invoke(records, params={"k": 1})["predictions"] == other.predict(frame).tolist()
        r = requests.post(f"{base}/models/churn/invocations", data=frame.to_csv(index=False),
                          headers={"Content-Type": "text/csv"})  # fmt: skip
        assert r.json() == {"predictions": other.predict(frame).tolist()}
        assert _client(base).invoke(frame)["predictions"] == demo_estimator.predict(frame).tolist()
        assert other.predict(frame).tolist() != demo_estimator.predict(frame).tolist()
        with pytest.raises(RuntimeError, match="not ready"):
            ScoringServerClient(parts.hostname, f"{parts.port}/models/nope").wait_server_ready(timeout=0.5)
