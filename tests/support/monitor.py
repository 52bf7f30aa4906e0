"""Helpers of the monitoring tests: log generated traffic straight into the prediction log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sklearn.pipeline import Pipeline

from retrain.synthetic import FEATURES, TARGET, TIMESTAMP, DriftPlan, generate
from service.codec import dumps
from service.config import Settings
from service.db.tables import Feedback
from service.monitor.references import store_reference
from service.serving import store as repository

MODEL = "demo"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def unique_model() -> str:
    """A model name of its own, since the PostgreSQL test database is shared within a session."""
    return f"demo-{uuid.uuid4().hex[:8]}"


def settings(url: str, model: str = MODEL, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=url,
        model_name=model,
        window_kind="rows",
        window_rows=1000,
        min_window_rows=200,
        performance_window_rows=500,
        breach_k=2,
        breach_m=3,
    )
    values.update(overrides)
    return Settings(**values)


def add_reference(engine: sa.Engine, model: str = MODEL, version: str = "1", n_rows: int = 4000) -> None:
    store_reference(
        engine,
        model_name=model,
        model_version=version,
        data=generate(n_rows, seed=0).drop(columns=[TIMESTAMP]),
        source="test",
    )


def log_traffic(
    engine: sa.Engine,
    estimator: Pipeline,
    *,
    n_rows: int,
    offset: int,
    model: str = MODEL,
    version: str = "1",
    drift: DriftPlan | None = None,
    labeled: bool = False,
    seed: int = 7,
) -> pd.DataFrame:
    """Score `n_rows` generated rows (stream position `offset`, one per second) and log them."""
    df = generate(n_rows, seed=seed, drift=drift, offset=offset)
    features = df[list(FEATURES)]
    preds = estimator.predict(features)
    proba = estimator.predict_proba(features)
    classes = [str(c) for c in estimator.classes_]
    records = features.astype(object).to_dict(orient="records")
    ids = [str(uuid.uuid4()) for _ in range(n_rows)]
    rows = [
        {
            "id": ids[i],
            "created_at": T0 + timedelta(seconds=offset + i),
            "model_name": model,
            "model_version": version,
            "features": dumps(records[i]),
            "output": dumps(preds[i].item()),
            "probabilities": dumps(dict(zip(classes, proba[i].tolist(), strict=True))),
            "latency_ms": 1.0,
            "endpoint": "predict",
        }
        for i in range(n_rows)
    ]
    with engine.begin() as conn:
        repository.insert_predictions(conn, rows=rows)
    if labeled:
        table = Feedback.__table__  # type: ignore[attr-defined]
        labels = df[TARGET].tolist()
        with engine.begin() as conn:
            conn.execute(
                sa.insert(table),
                [
                    {
                        "prediction_id": ids[i],
                        "label": dumps(labels[i]),
                        "received_at": T0 + timedelta(seconds=offset + i, milliseconds=500),
                    }
                    for i in range(n_rows)
                ],
            )
    df["prediction_id"] = ids
    return df
