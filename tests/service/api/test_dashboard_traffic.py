"""The dashboard page and its JSON carry the daily rollups."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from service.db.engine import make_engine
from service.lifecycle.rollups import run_rollups
from tests.support.prediction_log import insert, prediction_row


def test_page_and_data_show_daily_traffic(make_client: Callable[..., Any], sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    insert(engine, [prediction_row("demo", day + timedelta(minutes=i), {"x": 1.0}) for i in range(12)])
    run_rollups(engine, models=["demo"])
    engine.dispose()
    with make_client(sqlite_url) as client:
        page = client.get("/dashboard/models/demo").text
        data = client.get("/v1/dashboard/data").json()
    assert 'id="daily-traffic"' in page and f'data-day="{day.date().isoformat()}"' in page
    assert [(r["day"], r["predictions"]) for r in data["traffic"]] == [(day.date().isoformat(), 12)]
