"""The overview page (one row per watched model, each linking to its page) and the unknown-model page."""

from __future__ import annotations

import math
from html import escape
from string import Template
from typing import Any

from service.dashboard.history import model_href, when

STYLE = """body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 1.4em; } table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
.breach { color: #b00020; font-weight: 600; } .ok { color: #059669; } .muted { color: #777; }"""

OVERVIEW = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="$refresh">
<title>driftloop: $count models</title>
<style>
$style
</style>
</head>
<body>
<h1>driftloop &middot; <span id="model-count">$count</span> watched models</h1>
<table id="models">
<tr><th>model</th><th>champion</th><th>last window: rows / labeled</th><th>drift</th><th>performance</th>
<th>estimated</th><th>open episodes</th><th>last retrain</th><th>automation</th></tr>
$rows
</table>
<p class="muted">Generated $generated &middot; <a href="/v1/dashboard/overview">data as JSON</a> &middot;
<a href="/docs">API</a></p>
</body>
</html>
""")

UNKNOWN = Template("""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>driftloop: unknown model</title><style>
$style
</style></head>
<body>
<h1>No watched model is named <code id="unknown-model">$name</code></h1>
<p>Watched models:</p>
<ul id="known-models">$known</ul>
<p><a href="/">all models</a></p>
</body>
</html>
""")


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) and math.isfinite(value) else "?"


def _status(run: dict[str, Any] | None, what: str) -> str:
    if run is None:
        return '<span class="muted">no check yet</span>'
    css = "breach" if run["is_breach"] else "ok" if run["status"] == "no_drift" else "muted"
    value = f"{escape(run['metric'])} {_num(run['value'])} " if run.get("metric") else ""
    band = ""
    if run.get("lower") is not None and run.get("upper") is not None:
        band = f"[{_num(run['lower'])}, {_num(run['upper'])}] "
    dq = run.get("data_quality_features") or []  # a missing-value surge beside the drift status
    quality = (
        f' <span class="data-quality breach">+ data quality: {escape(", ".join(dq))}</span>' if dq else ""
    )
    return (
        f'<span class="{what}-status {css}" data-status="{escape(run["status"])}">{value}{band}'
        f"{escape(run['status'])}</span>{quality} "
        f'<a class="muted" href="/v1/drift/runs/{run["id"]}">run {run["id"]}</a>'
    )


def _row(m: dict[str, Any]) -> str:
    name, champ, window = m["name"], m["champion"], m["last_window"]
    default = ' <span class="muted">(default)</span>' if m["default"] else ""
    if champ["version"] is None:
        champion = f'<span class="breach">none loaded</span> ({escape(champ["error"] or "not loaded yet")})'
    else:
        champion = f'v<span class="champion-version">{escape(champ["version"])}</span>'
    if window is None:
        traffic = '<span class="muted">no window checked yet</span>'
    else:
        traffic = (
            f'<span class="window-rows">{window["n_rows"]}</span> / '
            f'<span class="window-labeled">{window["labeled"]}</span> '
            f'<span class="muted">(v{escape(window["model_version"])}, '
            f"to {when(window['window_end'])})</span>"
        )
    episodes = (
        ", ".join(f'<span class="episode breach">{escape(e["kind"])}</span>' for e in m["open_episodes"])
        or '<span class="muted">none</span>'
    )
    job = m["last_retrain"]
    retrain = '<span class="muted">never</span>'
    if job is not None:
        done = "finished" if job["finished"] else "created"
        retrain = (
            f'<a class="retrain-status" href="/v1/retrain/jobs/{job["id"]}">{escape(job["status"])}</a> '
            f'<span class="muted">({done} {when(job["at"])})</span>'
        )
    auto = m["automation"]
    automation = (
        f'<span class="automation breach" data-state="paused" title="{escape(auto["reason"])}">paused</span>'
        if auto["state"] == "paused"
        else '<span class="automation muted" data-state="active">active</span>'
    )
    return (
        f'<tr class="model" data-model="{escape(name)}">'
        f'<td><a class="model-link" href="{model_href(name)}">{escape(name)}</a>{default}</td>'
        f"<td>{champion}</td><td>{traffic}</td><td>{_status(window, 'drift')}</td>"
        f"<td>{_status(m['performance'], 'performance')}</td><td>{_status(m['estimated'], 'estimated')}</td>"
        f'<td class="open-episodes" data-count="{len(m["open_episodes"])}">{episodes}</td>'
        f"<td>{retrain}</td><td>{automation}</td></tr>"
    )


def render_overview(data: dict[str, Any], *, refresh_seconds: int) -> str:
    return OVERVIEW.substitute(
        refresh=refresh_seconds,
        style=STYLE,
        count=len(data["models"]),
        rows="\n".join(_row(m) for m in data["models"]),
        generated=escape(data["generated_at"]),
    )


def render_unknown(name: str, known: tuple[str, ...]) -> str:
    items = "".join(f'<li><a href="{model_href(k)}">{escape(k)}</a></li>' for k in known)
    return UNKNOWN.substitute(style=STYLE, name=escape(name), known=items)
