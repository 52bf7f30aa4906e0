"""The dashboard's label-free section: the estimated metric with its band beside the realized one, and the
latest drift run's root cause ("the drift that matters to this model")."""

from __future__ import annotations

from html import escape
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.codec import loads
from service.dashboard.band_svg import band_svg
from service.db.tables import DriftRun

KIND = "estimated_performance"


def estimation_data(engine: sa.Engine, *, model_name: str, runs: int = 50) -> dict[str, Any]:
    """The last `runs` estimated runs' watched metric (oldest first) and the latest drift run's cause."""
    recent = (
        select(DriftRun)
        .where(DriftRun.model_name == model_name, DriftRun.kind == KIND)
        .order_by(col(DriftRun.id).desc())
        .limit(runs)
    )
    latest_drift = (
        select(DriftRun)
        .where(DriftRun.model_name == model_name, DriftRun.kind == "drift")
        .order_by(col(DriftRun.id).desc())
        .limit(1)
    )
    with Session(engine) as session:
        rows = list(reversed(session.exec(recent).all()))
        drift_run = session.exec(latest_drift).first()
    points, metric, limits = [], None, ""
    for r in rows:
        summary = loads(r.summary)
        metric = summary.get("metric") or metric
        limits = summary.get("limits") or limits
        found = [m for m in (summary.get("estimate") or {}).get("metrics", []) if m["metric"] == metric]
        if not found or found[0].get("value") is None:
            continue
        m, breach = found[0], summary.get("breach") or {}
        base, effect = breach.get("baseline"), breach.get("min_effect")
        threshold = None
        if base is not None and effect is not None:
            threshold = base * (1.0 + effect) if metric in ("mae", "rmse") else base - effect
        points.append(
            {
                "run_id": r.id, "window_end": r.window_end.isoformat(), "model_version": r.model_version,
                "value": m["value"], "lower": m["lower"], "upper": m["upper"],
                "baseline": base, "threshold": threshold,
                "is_drift": r.is_breach, "status": r.status,
            }
        )  # fmt: skip
    cause = None
    if drift_run is not None:
        found_cause = loads(drift_run.summary).get("root_cause")
        if found_cause:
            cause = {"run_id": drift_run.id, **found_cause}
    return {"metric": metric, "estimated": points, "limits": limits, "root_cause": cause}


def render_estimation(data: dict[str, Any] | None, realized: dict[str, list[dict[str, Any]]]) -> str:
    """The section's HTML ('' when there is neither an estimate nor a root cause yet)."""
    if not data or (not data["estimated"] and not data["root_cause"]):
        return ""
    parts = [
        '<h2>Without labels <span class="muted">(estimated performance and drift root cause)</span></h2>'
    ]
    cause = data["root_cause"]
    if cause:
        parts.append(
            f'<p id="root-cause" data-run-id="{cause["run_id"]}" class="root-cause">'
            f"{escape(cause['sentence'])} "
            f'<a class="muted" href="/v1/drift/runs/{cause["run_id"]}">run {cause["run_id"]}</a></p>'
        )
    if data["estimated"]:
        metric = data["metric"] or ""
        svg = band_svg(metric, data["estimated"], realized.get(metric, []))
        parts.append(
            f'<section class="features" id="estimated"><figure class="metric" data-metric="{escape(metric)}">'
            f"<figcaption>{escape(metric)} "
            '<span class="muted">estimated (line, band) &middot; realized (squares)</span></figcaption>'
            f"{svg}</figure></section>"
        )
        parts.append(f'<p class="muted limits" id="estimate-limits">{escape(data["limits"])}</p>')
    return "\n".join(parts)
