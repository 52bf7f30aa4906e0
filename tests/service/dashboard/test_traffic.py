"""The daily traffic section: rollups read back for the page, one bar a day, a row per version-day."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from service.dashboard.traffic import daily_rollups, render_traffic
from service.db.engine import make_engine
from service.lifecycle.rollups import run_rollups
from tests.support.prediction_log import insert, prediction_row, unique_model


def seed_days(engine: sa.Engine, model: str) -> tuple[str, str]:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    d1, d2 = today - timedelta(days=3), today - timedelta(days=1)
    rows = [
        prediction_row(model, d1 + timedelta(minutes=i), {"x": 1.0}, output=i % 2, latency_ms=2.0)
        for i in range(30)
    ]
    rows += [
        prediction_row(model, d2 + timedelta(minutes=i), {"x": 1.0}, output=1, version="2") for i in range(10)
    ]
    rows += [prediction_row(model, today - timedelta(days=200), {"x": 1.0})]  # beyond the page's 90 days
    insert(engine, rows, {r["id"]: (1, d2) for r in rows[:6]})
    run_rollups(engine, models=[model])
    return d1.date().isoformat(), d2.date().isoformat()


def test_rollups_are_read_and_rendered(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    from service.db.engine import upgrade

    upgrade(url)
    engine = make_engine(url)
    model = unique_model()
    d1, d2 = seed_days(engine, model)
    rows = daily_rollups(engine, model_name=model)
    assert [(r["day"], r["model_version"], r["predictions"], r["labeled"]) for r in rows] == [
        (d1, "1", 30, 6),
        (d2, "2", 10, 0),
    ]
    assert rows[0]["latency_p50"] == 2.0 and rows[0]["outputs"]["counts"] == {"0": 15, "1": 15}
    html = render_traffic(rows)
    svg = ET.fromstring(html[html.index("<svg") : html.index("</svg>") + 6])
    bars = {
        b.attrib["data-day"]: float(b.attrib["height"])
        for b in svg.iter("rect")
        if b.attrib.get("class") == "bar"
    }
    assert set(bars) == {d1, d2} and bars[d1] == 3 * bars[d2]  # 30 vs 10 predictions
    assert html.count('class="rollup"') == 2 and "0 50%, 1 50%" in html
    assert render_traffic([]) == ""
    engine.dispose()
