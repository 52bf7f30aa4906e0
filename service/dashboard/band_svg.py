"""Server-side SVG of an estimated metric over time: its band (where the realized value should land) as a
shaded area, the estimate as a line of points, the breach line, and the realized metric as squares."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from service.dashboard.svg import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, _pts, _x_label, _y_ticks


def _t(p: dict[str, Any]) -> float:
    return datetime.fromisoformat(p["window_end"]).timestamp()


def band_svg(metric: str, estimated: list[dict[str, Any]], realized: list[dict[str, Any]]) -> str:
    est = [p for p in estimated if p.get("value") is not None]
    real = [p for p in realized if p.get("statistic") is not None]
    values = [v for p in est for v in (p["lower"], p["upper"], p["value"]) if v is not None]
    values += [p["statistic"] for p in real] + [p["threshold"] for p in est if p.get("threshold") is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi - lo) * 0.1 or 0.05
    lo, hi = lo - pad, hi + pad
    times = [_t(p) for p in est + real]
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (plot_w / 2 if t1 == t0 else (t - t0) / (t1 - t0) * plot_w)

    def y(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * plot_h

    parts = [
        f'<svg class="estimated-plot" data-metric="{escape(metric)}" data-points="{len(est)}" '
        f'data-realized-points="{len(real)}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" '
        f'aria-label="{escape(metric)}: estimated without labels, with its band, beside realized">',
        f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>',
        *_y_ticks(lo, hi, y, log=False),
    ]
    if times:
        parts.append(_x_label(LEFT, HEIGHT - 6, t0, "start"))
        if t1 > t0:
            parts.append(_x_label(WIDTH - RIGHT, HEIGHT - 6, t1, "end"))
    banded = [p for p in est if p.get("lower") is not None and p.get("upper") is not None]
    if banded:
        upper = [(x(_t(p)), y(p["upper"])) for p in banded]
        lower = [(x(_t(p)), y(p["lower"])) for p in reversed(banded)]
        if len(banded) == 1:  # a lone window still shows its band: a short bar
            (ux, uy), (lx, ly) = upper[0], lower[0]
            upper, lower = [(ux - 4, uy), (ux + 4, uy)], [(lx + 4, ly), (lx - 4, ly)]
        parts.append(f'<polygon class="band" points="{_pts(upper + lower)}"/>')
    # the breach line: the estimator's baseline less the minimum effect
    line = [(x(_t(p)), y(p["threshold"])) for p in est if p.get("threshold") is not None]
    if line:
        edge = [(float(LEFT), line[0][1]), *line, (float(LEFT + plot_w), line[-1][1])]
        parts.append(f'<polyline class="threshold" points="{_pts(edge)}"/>')
    if len(est) > 1:
        parts.append(
            f'<polyline class="series estimated" points="{_pts([(x(_t(p)), y(p["value"])) for p in est])}"/>'
        )
    for p in est:
        cls = "point estimated drift" if p["is_drift"] else "point estimated"
        tip = (
            f"run {p['run_id']} (v{p['model_version']}) {p['window_end']}\n"
            f"estimated {metric} {p['value']:.4f} (band {p['lower']:.4f} .. {p['upper']:.4f}), {p['status']}"
        )
        parts.append(
            f'<a href="/v1/drift/runs/{p["run_id"]}"><circle class="{cls}" data-run-id="{p["run_id"]}" '
            f'data-value="{p["value"]}" cx="{x(_t(p)):.1f}" cy="{y(p["value"]):.1f}" '
            f'r="{5 if p["is_drift"] else 3.5}"><title>{escape(tip)}</title></circle></a>'
        )
    for p in real:
        px, py = x(_t(p)), y(p["statistic"])
        tip = f"run {p['run_id']} {p['window_end']}\nrealized {metric} {p['statistic']:.4f}, {p['status']}"
        parts.append(
            f'<rect class="realized{" drift" if p["is_drift"] else ""}" data-run-id="{p["run_id"]}" '
            f'data-value="{p["statistic"]}" x="{px - 3.5:.1f}" y="{py - 3.5:.1f}" width="7" height="7">'
            f"<title>{escape(tip)}</title></rect>"
        )
    if not est:
        parts.append(
            f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            "no estimates yet</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)
