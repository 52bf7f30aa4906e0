"""The labeled production rows a retrain learns from: predictions joined with their feedback."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from retrain.clean import MAX_ABS, usable_rows
from service.codec import loads

log = logging.getLogger(__name__)
TARGET, TIME = "target", "timestamp"
DROPPED = "dropped_rows"  # frame.attrs key: labeled rows left out as unusable


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
    records, unreadable = [], 0
    for ts, f, label in reversed(rows):
        try:  # a number JSON can write but orjson cannot read as a double (1 followed by 400 zeros)
            records.append({**loads(f), TARGET: loads(label), TIME: ts})
        except ValueError:
            unreadable += 1
    frame = pd.DataFrame.from_records(records)
    if TIME in frame.columns:  # SQLite's raw rows give text: a retrain after a change compares times
        frame[TIME] = pd.to_datetime(frame[TIME], utc=True, format="mixed")
    # Defence in depth: rows the API would refuse today (a 1e308 logged before the check, or written by
    # hand) would turn training into NaN; they are dropped and counted, the job goes on.
    clean, dropped = usable_rows(frame, [c for c in frame.columns if c != TIME])
    dropped += unreadable
    clean = clean.reset_index(drop=True)
    clean.attrs[DROPPED] = dropped
    if dropped:
        log.warning("retrain data of %s: %d unusable labeled row(s) dropped (non-finite or beyond ±%g)",
                    model_name, dropped, MAX_ABS)  # fmt: skip
    return clean
