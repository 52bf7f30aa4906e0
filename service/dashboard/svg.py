"""Server-side SVG of one feature's drift measure over time: no script, no CDN.

p-value tests are drawn on a log scale (drift when the point falls below the threshold line); distances on a
linear one (drift at or above it); realized performance metrics on a linear one (a breach below the line).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape
from typing import Any

WIDTH, HEIGHT = 560, 180
LEFT, RIGHT, TOP, BOTTOM = 58, 14, 12, 26
P_FLOOR = 1e-16


def measure(points: list[dict[str, Any]]) -> str:
    """`p_val` when the feature's latest result is a p-value test, else `statistic`."""
    return "p_val" if points and points[-1].get("p_val") is not None else "statistic"


def feature_svg(feature: str, points: list[dict[str, Any]], *, performance: bool = False) -> str:
    key = "statistic" if performance else measure(points)
    shown = [p for p in points if p.get(key) is not None]
    log = key == "p_val"

    def val(v: float) -> float:
        return math.log10(max(v, P_FLOOR)) if log else v

    values = [val(p[key]) for p in shown]
    thresholds = [val(p["threshold"]) for p in shown if p.get("threshold") is not None]
    lo, hi = _domain(values + thresholds, log=log)
    times = [datetime.fromisoformat(p["window_end"]).timestamp() for p in shown]
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (plot_w / 2 if t1 == t0 else (t - t0) / (t1 - t0) * plot_w)

    def y(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * plot_h

    label = "p-value (log scale; drift below the line)" if log else "statistic (drift at or above the line)"
    if performance:
        label = "metric (breach below the line)"
    cls = "performance-plot" if performance else "feature-plot"
    parts = [
        f'<svg class="{cls}" data-feature="{escape(feature)}" data-measure="{key}" '
        f'data-points="{len(shown)}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(feature)}: {label}">',
        f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>',
        *_y_ticks(lo, hi, y, log=log),
    ]
    if times:
        parts.append(_x_label(LEFT, HEIGHT - 6, times[0], "start"))
        if len(times) > 1:
            parts.append(_x_label(WIDTH - RIGHT, HEIGHT - 6, times[-1], "end"))
    threshold_points = [
        (x(t), y(val(p["threshold"])))
        for t, p in zip(times, shown, strict=True)
        if p.get("threshold") is not None
    ]
    if threshold_points:
        # Extend to the frame's edges so a single run still shows where its threshold lies.
        edge = [
            (float(LEFT), threshold_points[0][1]),
            *threshold_points,
            (float(LEFT + plot_w), threshold_points[-1][1]),
        ]
        parts.append(f'<polyline class="threshold" points="{_pts(edge)}"/>')
    if len(shown) > 1:
        line = [(x(t), y(v)) for t, v in zip(times, values, strict=True)]
        parts.append(f'<polyline class="series" points="{_pts(line)}"/>')
    for t, v, p in zip(times, values, shown, strict=True):
        parts.append(_point(x(t), y(v), p, key))
    if not shown:
        parts.append(
            f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no results yet</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _domain(values: list[float], *, log: bool) -> tuple[float, float]:
    if not values:
        return (-4.0, 0.0) if log else (0.0, 1.0)
    if log:
        lo = math.floor(min(values)) - 0.5
        return (min(lo, -1.0), 0.0)
    hi = max(values) * 1.15
    return (min(0.0, min(values)), hi if hi > 0 else 1.0)


def _y_ticks(lo: float, hi: float, y: Any, *, log: bool) -> list[str]:
    out = []
    for i in range(4):
        v = lo + (hi - lo) * i / 3
        text = f"1e{v:.0f}" if log else f"{v:.3g}"
        out.append(f'<text class="tick" x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{text}</text>')
    return out


def _x_label(px: float, py: float, t: float, anchor: str) -> str:
    stamp = datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M UTC")
    return f'<text class="tick" x="{px}" y="{py}" text-anchor="{anchor}">{stamp}</text>'


def _point(px: float, py: float, p: dict[str, Any], key: str) -> str:
    quality = p.get("status") == "data_quality"  # a missing-value surge: flagged, though not drift
    cls = "point drift" if p["is_drift"] else "point quality" if quality else "point"
    radius = 5 if p["is_drift"] or quality else 3.5
    tip = (
        f"run {p['run_id']} (v{p['model_version']}) {p['window_end']}\n"
        f"{p['method']}: {key}={p[key]:.4g}, threshold={_fmt(p.get('threshold'))}, {p['status']}"
    )
    return (
        f'<a href="/v1/drift/runs/{p["run_id"]}/report.html">'
        f'<circle class="{cls}" data-run-id="{p["run_id"]}" data-value="{p[key]}" '
        f'data-drift="{str(p["is_drift"]).lower()}" data-status="{escape(str(p.get("status", "")))}" '
        f'cx="{px:.1f}" cy="{py:.1f}" r="{radius}">'
        f"<title>{escape(tip)}</title></circle></a>"
    )


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _pts(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
