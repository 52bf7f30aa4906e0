"""The labeled production rows a retrain learns from: predictions joined with their feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from service.codec import loads

TARGET, TIME = "target", "timestamp"


def labeled_rows(
    engine: sa.Engine,
    *,
    model_name: str,
    limit: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """The most recent `limit` labeled rows of the model in [start, end], oldest first."""
    query = (
        "SELECT p.created_at, p.features, f.label FROM predictions p "
        "JOIN feedback f ON f.prediction_id = p.id WHERE p.model_name = :name"
    )
    params: dict[str, Any] = {"name": model_name, "limit": limit}
    if start is not None:
        query += " AND p.created_at >= :start"
        params["start"] = start
    if end is not None:
        query += " AND p.created_at <= :end"
        params["end"] = end
    query += " ORDER BY p.created_at DESC LIMIT :limit"
    with engine.connect() as conn:
        rows = conn.execute(sa.text(query), params).all()
    records = [{**loads(f), TARGET: loads(label), TIME: ts} for ts, f, label in reversed(rows)]
    return pd.DataFrame.from_records(records)
