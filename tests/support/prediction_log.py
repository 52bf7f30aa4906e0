"""Helpers of the lifecycle tests: rows written straight into the prediction log, at chosen times."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from service.codec import dumps
from service.db.tables import Feedback, Prediction
from service.serving.store import insert_predictions

P = Prediction.__table__  # type: ignore[attr-defined]
FB = Feedback.__table__  # type: ignore[attr-defined]


def unique_model(prefix: str = "life") -> str:
    """A model name of its own: the PostgreSQL test database is shared within a session."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def prediction_row(
    model: str,
    created_at: datetime,
    features: dict[str, Any],
    *,
    version: str = "1",
    output: Any = 0,
    probabilities: dict[str, float] | None = None,
    latency_ms: float = 1.0,
    row_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": row_id or str(uuid.uuid4()),
        "created_at": created_at,
        "model_name": model,
        "model_version": version,
        "features": dumps(features),
        "output": dumps(output),
        "probabilities": dumps(probabilities) if probabilities is not None else None,
        "latency_ms": latency_ms,
        "endpoint": "predict",
    }


def insert(
    engine: sa.Engine, rows: Sequence[dict[str, Any]], labels: dict[str, tuple[Any, datetime]] | None = None
) -> None:
    """Insert prediction rows and labels {prediction id: (label, received_at)} in one transaction."""
    with engine.begin() as conn:
        for start in range(0, len(rows), 2000):
            insert_predictions(conn, rows=rows[start : start + 2000])
        items = [
            {"prediction_id": pid, "label": dumps(lab), "received_at": at}
            for pid, (lab, at) in (labels or {}).items()
        ]
        for start in range(0, len(items), 2000):
            conn.execute(sa.insert(FB), items[start : start + 2000])


def daily_rows(
    model: str, start: datetime, days: int, per_day: int, *, version: str = "1"
) -> list[dict[str, Any]]:
    """`per_day` rows on each of `days` days from `start`, spread over the day."""
    step = timedelta(days=1) / per_day
    probabilities = {"0": 0.4, "1": 0.6}
    return [
        prediction_row(
            model,
            start + timedelta(days=d) + i * step,
            {"x": float(i), "city": "abc"[i % 3]},
            version=version,
            output=i % 2,
            probabilities=probabilities,
            latency_ms=1.0 + i % 7,
        )
        for d in range(days)
        for i in range(per_day)
    ]
