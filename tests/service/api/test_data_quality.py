"""A surge of missing values (issue 13) from the prediction log to every place a person or receiver reads
it: the stored run and its feature rows, the episode's webhook payload, the model's dashboard page and
its JSON; on SQLite and PostgreSQL, checked by the real monitor."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sklearn.pipeline import Pipeline
from sqlmodel import Session, col, select

from retrain.synthetic import FEATURES, generate
from service.app import create_app
from service.config import Settings
from service.db.engine import make_engine
from service.db.tables import Event, FeatureResult
from service.monitor.runner import Monitor
from tests.support.core import FakeRegistry
from tests.support.monitor import T0, add_reference, settings, unique_model
from tests.support.prediction_log import insert, prediction_row


def _log(engine: sa.Engine, estimator: Pipeline, model: str, *, offset: int, missing: float) -> None:
    """1000 generated rows scored by the estimator, `income` logged as null in a share `missing`."""
    df = generate(1000, seed=offset, offset=offset)[list(FEATURES)]
    preds = estimator.predict(df)
    records = df.astype(object).to_dict(orient="records")
    blank = set(range(0, 1000, round(1 / missing))) if missing else set()
    rows = []
    for i, record in enumerate(records):
        features: dict[str, Any] = {str(k): v for k, v in record.items()}
        if i in blank:
            features["income"] = None
        rows.append(
            prediction_row(model, T0 + timedelta(seconds=offset + i), features, output=preds[i].item())
        )
    insert(engine, rows)


def test_a_missing_value_surge_is_stored_alerted_and_shown(
    database_url: str, tmp_path: Path, demo_estimator: Pipeline
) -> None:
    model = unique_model()
    engine = make_engine(database_url)
    add_reference(engine, model)  # the reference has no missing income
    monitor = Monitor(settings(database_url, model), engine, champion_version=lambda _: "1")
    _log(engine, demo_estimator, model, offset=0, missing=0.0)
    (clean,) = monitor.run_due("drift")
    runs = []
    for block in (1, 2):  # a broken upstream join: every third income is null
        _log(engine, demo_estimator, model, offset=block * 1000, missing=1 / 3)
        runs += monitor.run_due("drift")
    assert not clean.is_breach and [r.is_breach for r in runs] == [True, True]

    # the stored runs: the summary and the feature row say data_quality, with the test's numbers
    for run in runs:
        summary = orjson.loads(run.summary)
        assert summary["data_quality"] is True and summary["data_quality_features"] == ["income"]
        income = next(f for f in summary["features"] if f["name"] == "income")
        assert income["status"] == "data_quality" and income["missing_is_drift"] is True
        assert income["missing_rate_ref"] == 0.0 and abs(income["missing_rate_cur"] - 0.334) < 0.01
        assert income["reason"].startswith("missing values rose from 0.0% to 33.4%")
        assert "data quality: income: missing values rose" in summary["message"]
    with Session(engine) as session:
        stored = session.exec(
            select(FeatureResult.status).where(
                FeatureResult.run_id == runs[-1].id, FeatureResult.feature == "income"
            )
        ).one()
        events = session.exec(
            select(Event).where(Event.model_name == model).order_by(col(Event.created_at))
        ).all()
    assert stored == "data_quality"

    # the episode's event (the webhook body as sent): which feature, the rates, the test and its numbers
    assert [e.type for e in events] == ["drift.detected"]
    payload = orjson.loads(events[0].payload)
    assert payload["model"] == {"name": model, "version": "1"} and "income" in payload["summary"]
    data = payload["data"]
    (dq,) = data["data_quality"]
    assert dq["feature"] == "income" and dq["missing_rate_ref"] == 0.0 and dq["missing_rate_cur"] > 0.3
    assert dq["p_val"] < dq["alpha"] == 0.01 and dq["effect_size"] >= dq["min_effect"] == 0.2
    assert dq["test"] == "missing rate, one-sided two-proportion" and dq["reason"].startswith(
        "missing values"
    )
    assert data["drifted"] == [] or all(d["feature"] != "income" for d in data["drifted"])

    # the model's page and its JSON
    registry = FakeRegistry(model, {"1": demo_estimator}, "1")
    app_settings = Settings(data_dir=tmp_path, database_url=database_url, model_name=model,
                            embedded_scheduler=False, model_poll_seconds=0.05)  # fmt: skip
    with TestClient(create_app(app_settings, loader=(registry.resolve, registry.fetch))) as client:
        doc = client.get("/v1/dashboard/data").json()
        html = client.get(f"/dashboard/models/{model}").text
        page = client.get(f"/v1/drift/runs/{runs[-1].id}/report.html").text
        overview = client.get("/v1/dashboard/overview").json()["models"][0]
        detail = client.get(f"/v1/drift/runs/{runs[-1].id}").json()  # the stored run through the API
        overview_html = client.get("/").text
    latest = {r["id"]: r for r in doc["runs"]}
    assert latest[runs[-1].id]["data_quality_features"] == ["income"]
    assert latest[clean.id]["data_quality_features"] == []
    assert [p["status"] for p in doc["features"]["income"]] == ["no_drift", "data_quality", "data_quality"]
    row = re.search(rf'<tr class="run" data-run-id="{runs[-1].id}">.*?</tr>', html, flags=re.S)
    assert row is not None and "+ data quality: income" in row.group(0)
    figure = re.search(r'<figure class="feature" data-feature="income">.*?</figure>', html, flags=re.S)
    assert figure is not None and "missing values surged" in figure.group(0)
    quality_points = re.findall(
        r'<circle class="point quality"[^>]*data-status="data_quality"', figure.group(0)
    )
    assert len(quality_points) == 2
    other = re.search(r'<figure class="feature" data-feature="age">.*?</figure>', html, flags=re.S)
    assert other is not None and "missing values surged" not in other.group(0)
    assert 'class="point quality"' not in other.group(0)
    assert overview["last_window"]["data_quality_features"] == ["income"]
    assert detail["summary"]["data_quality_features"] == ["income"] and detail["is_breach"] is True
    assert {f["feature"]: f["status"] for f in detail["features"]}["income"] == "data_quality"
    assert "+ data quality: income" in overview_html

    # the run's HTML report leads with driftloop's decision, the breach named, before Evidently's panels
    lead, panels = page.index('id="driftloop-verdict"'), page.index('<div id="root_metric')
    assert page.index("<body>") < lead < panels
    verdict = page[lead:panels]
    assert "missing-value breach in income" in verdict
    income_row = re.search(r"<tr><td>income</td>.*?</tr>", verdict)
    assert income_row is not None
    assert "<td><code>data_quality</code></td><td>missing values rose from 0.0% to 33.4%" in income_row.group(
        0
    )
    engine.dispose()
