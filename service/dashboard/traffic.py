"""The dashboard's daily traffic section, from the rollups (they outlive the raw rows retention deletes)."""

from __future__ import annotations

from datetime import timedelta
from html import escape
from typing import Any

import sqlalchemy as sa

from service.codec import loads
from service.db.lifecycle_tables import PredictionRollup
from service.db.tables import utcnow

R = PredictionRollup.__table__  # type: ignore[attr-defined]
DAYS = 90
TABLE_ROWS = 14
WIDTH, HEIGHT, PAD = 640, 120, 24


def daily_rollups(engine: sa.Engine, *, model_name: str, days: int = DAYS) -> list[dict[str, Any]]:
    """The model's rollups of the last `days` days, oldest first (JSON-ready)."""
    since = (utcnow() - timedelta(days=days)).date()
    stmt = (
        sa.select(R)
        .where(R.c.model_name == model_name, R.c.day >= since)
        .order_by(R.c.day, R.c.model_version)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [
        {
            "day": str(r["day"])[:10],
            "model_version": r["model_version"],
            "predictions": r["predictions"],
            "labeled": r["labeled"],
            "latency_p50": r["latency_p50"],
            "latency_p95": r["latency_p95"],
            "latency_p99": r["latency_p99"],
            "outputs": loads(r["outputs"]),
            "final": bool(r["final"]),
        }
        for r in rows
    ]


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _outputs(out: dict[str, Any]) -> str:
    if out.get("kind") == "numeric":
        q = out.get("quantiles", {})
        return f"median {q.get('0.5', 0):.3g} (p5 {q.get('0.05', 0):.3g}, p95 {q.get('0.95', 0):.3g})"
    counts = out.get("counts", {})
    total = sum(counts.values()) or 1
    return ", ".join(f"{escape(str(k))} {100 * v / total:.0f}%" for k, v in list(counts.items())[:5])


def bars_svg(rows: list[dict[str, Any]]) -> str:
    """Predictions per day (all versions), one bar a day."""
    per_day: dict[str, int] = {}
    for r in rows:
        per_day[r["day"]] = per_day.get(r["day"], 0) + r["predictions"]
    days = sorted(per_day)
    top = max(per_day.values(), default=0) or 1
    step = (WIDTH - 2 * PAD) / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        h = (HEIGHT - 2 * PAD) * per_day[day] / top
        bars.append(
            f'<rect class="bar" data-day="{day}" x="{PAD + i * step:.1f}" y="{HEIGHT - PAD - h:.1f}" '
            f'width="{max(step - 1, 1):.1f}" height="{h:.1f}"><title>{day}: {per_day[day]}</title></rect>'
        )
    first, last = (days[0], days[-1]) if days else ("", "")
    label = (
        f'<text class="tick" x="{PAD}" y="{PAD - 8}">max {top} / day</text>'
        f'<text class="tick" x="{PAD}" y="{HEIGHT - 6}">{first}</text>'
        f'<text class="tick" x="{WIDTH - PAD}" y="{HEIGHT - 6}" text-anchor="end">{last}</text>'
    )
    return (
        f'<svg width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="predictions per day">'
        f'<rect class="frame" x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}"/>'
        f"{''.join(bars)}{label}</svg>"
    )


def render_traffic(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""  # no complete day rolled up yet
    head = (
        "<tr><th>day</th><th>version</th><th>predictions</th><th>labeled</th>"
        "<th>latency p50 / p95 / p99 (ms)</th><th>predicted</th></tr>"
    )
    body = "".join(
        f'<tr class="rollup" data-day="{r["day"]}"><td>{r["day"]}</td><td>{escape(r["model_version"])}</td>'
        f"<td>{r['predictions']}</td><td>{r['labeled']}</td>"
        f"<td>{_ms(r['latency_p50'])} / {_ms(r['latency_p95'])} / {_ms(r['latency_p99'])}</td>"
        f"<td>{_outputs(r['outputs'])}</td></tr>"
        for r in reversed(rows[-TABLE_ROWS:])
    )
    return (
        f'<h2>Daily traffic <span class="muted">(rollups; kept after the raw rows are deleted)</span></h2>\n'
        f'<section id="daily-traffic">{bars_svg(rows)}<table id="rollups">{head}{body}</table></section>'
    )
