"""The dashboard page: plain HTML + inline SVG from `dashboard_data()`; nothing loaded from a network."""

from __future__ import annotations

from html import escape
from string import Template
from typing import Any
from urllib.parse import quote

from service.dashboard.estimation import render_estimation
from service.dashboard.history import render_retrains, render_versions
from service.dashboard.progress import render_progress
from service.dashboard.svg import feature_svg
from service.dashboard.traffic import render_traffic

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="$refresh">
<title>driftloop: $model</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 28px; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }
.status-drift, .breach { color: #b00020; font-weight: 600; }
.features { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; } figcaption { font-weight: 600; }
.frame { fill: #fafafa; stroke: #ccc; }
.tick { font-size: 10px; fill: #666; }
.threshold { fill: none; stroke: #d97706; stroke-dasharray: 5 4; stroke-width: 1.5; }
.series { fill: none; stroke: #2563eb; stroke-width: 1.2; }
svg .point { fill: #2563eb; } svg .point.drift { fill: #b00020; } svg .point.quality { fill: #d97706; }
.quality { color: #b45309; font-weight: 600; }
.muted { color: #777; }
svg .bar { fill: #2563eb; }
.band { fill: #2563eb; fill-opacity: 0.15; stroke: none; }
svg .realized { fill: #059669; } svg .realized.drift { fill: #b00020; }
.root-cause { font-weight: 600; max-width: 60em; } .limits { max-width: 60em; font-size: 0.85em; }
</style>
</head>
<body>
<nav><a id="overview-link" href="/">all models</a></nav>
<h1>driftloop &middot; <span id="model-name">$model</span></h1>
<section id="champion" data-version="$champion_version">$champion</section>
$next_window
$next_label_window
<section id="automation">$automation</section>
<h2>Open breach episodes</h2>
<section id="open-episodes">$episodes</section>
<h2>Drift of each feature
<span class="muted">(last $plot_runs drift checks; click a point for its report)</span></h2>
<section class="features" id="features">$features</section>
$performance
$estimation
$traffic
<h2>Latest checks</h2>
<section id="latest-runs">$runs</section>
<h2>Retrains <span class="muted">(newest first)</span></h2>
<section id="retrain-history">$retrains</section>
<h2>Versions</h2>
<section id="version-history">$versions</section>
<p class="muted">Generated $generated &middot; <a id="data-link" href="$data_href">data as JSON</a> &middot;
<a href="/docs">API</a></p>
</body>
</html>
""")


def render_page(data: dict[str, Any], *, refresh_seconds: int, plot_runs: int) -> str:
    champ = data["champion"]
    return PAGE.substitute(
        refresh=refresh_seconds,
        model=escape(data["model_name"]),
        champion_version=escape(champ["version"] or ""),
        champion=_champion(champ),
        episodes=_episodes(data["open_episodes"]),
        features="\n".join(_figure(name, pts) for name, pts in data["features"].items())
        or '<p class="muted" id="no-features">No drift checks yet.</p>',
        performance=_performance(data["performance"], data.get("performance_evidence")),
        automation=_automation(data.get("automation"), data["model_name"]),
        estimation=render_estimation(data.get("estimation"), data["performance"]),
        traffic=render_traffic(data.get("traffic", [])),
        runs=_runs(data["runs"]),
        next_window=render_progress(data.get("next_window")),
        next_label_window=render_progress(data.get("next_label_window"), "performance"),
        retrains=render_retrains(data.get("retrains", [])),
        versions=render_versions(data.get("versions", [])),
        data_href=f"/v1/dashboard/data?model={quote(data['model_name'], safe='')}",
        plot_runs=plot_runs,
        generated=escape(data["generated_at"]),
    )


def _champion(champ: dict[str, Any]) -> str:
    if champ["version"] is None:
        reason = escape(champ["error"] or "not loaded yet")
        return f'Champion: <strong class="breach">none loaded</strong> ({reason})'
    return (
        f'Champion: <strong><span class="champion-name">{escape(champ["name"])}</span> '
        f'v<span class="champion-version">{escape(champ["version"])}</span></strong> '
        f'<span class="muted">(loaded {escape(champ["loaded_at"])})</span>'
    )


def _episodes(episodes: list[dict[str, Any]]) -> str:
    if not episodes:
        return '<p class="muted">None: no breach in progress.</p>'
    items = "".join(
        f'<li class="episode breach" data-episode-id="{e["id"]}">{escape(e["kind"])} breach since '
        f"{escape(e['opened_at'])} (runs "
        f'<a href="/v1/drift/runs/{e["first_run_id"]}">{e["first_run_id"]}</a> .. '
        f'<a href="/v1/drift/runs/{e["last_run_id"]}">{e["last_run_id"]}</a>)</li>'
        for e in episodes
    )
    return f"<ul>{items}</ul>"


def _figure(name: str, points: list[dict[str, Any]]) -> str:
    method = escape(points[-1]["method"]) if points else ""
    quality = (
        ' <span class="quality data-quality-badge">missing values surged</span>'
        if points and points[-1].get("status") == "data_quality"
        else ""
    )
    return (
        f'<figure class="feature" data-feature="{escape(name)}"><figcaption>{escape(name)} '
        f'<span class="muted">{method}</span>{quality}</figcaption>{feature_svg(name, points)}</figure>'
    )


def _automation(state: dict[str, Any] | None, model: str | None = None) -> str:
    if not state or state["state"] == "active":
        return '<p class="muted" data-state="active">Automatic retraining: active.</p>'
    if state.get("changed_by") == "configuration":  # automation_paused: a resume here is a 409
        return (
            '<p class="breach" data-state="paused" data-by="configuration">Automatic retraining: '
            f"{escape(state['reason'])} (the configuration's to change).</p>"
        )
    until = f"until {escape(state['resumes_at'])}" if state["resumes_at"] else "until a person resumes it"
    return (
        f'<p class="breach" data-state="paused">Automatic retraining: paused {until} '
        f"({escape(state['reason'])}; POST {escape(_resume_path(model))} to resume).</p>"
    )


def _resume_path(model: str | None) -> str:
    return "/v1/automation" if model is None else f"/v1/models/{quote(model, safe='')}/automation"


def _performance(series: dict[str, list[dict[str, Any]]], evidence: dict[str, Any] | None = None) -> str:
    if not series:
        return ""  # no labels have arrived: nothing to show
    said = ""
    if evidence and evidence.get("message"):
        css = "breach" if evidence["is_breach"] else "muted"
        said = f'<p id="performance-evidence" class="{css}">Latest check: {escape(evidence["message"])}</p>\n'

    figures = "\n".join(
        f'<figure class="metric" data-metric="{escape(name)}"><figcaption>{escape(name)}</figcaption>'
        f"{feature_svg(name, points, performance=True)}</figure>"
        for name, points in series.items()
    )
    return (
        '<h2>Realized performance <span class="muted">(labeled predictions)</span></h2>\n'
        f'{said}<section class="features" id="performance">{figures}</section>'
    )


def _runs(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return '<p class="muted">No checks yet.</p>'
    head = (
        "<tr><th>run</th><th>kind</th><th>version</th><th>window end</th><th>rows</th><th>status</th>"
        "<th>drift share</th><th>breach</th><th>links</th></tr>"
    )
    rows = []
    for r in runs:
        share = "" if r["drift_share"] is None else f"{r['drift_share']:.2f}"
        dq = r.get("data_quality_features") or []
        quality = (
            f' <span class="quality data-quality">+ data quality: {escape(", ".join(dq))}</span>'
            if dq
            else ""
        )
        rows.append(
            f'<tr class="run" data-run-id="{r["id"]}"><td>{r["id"]}</td><td>{escape(r["kind"])}</td>'
            f"<td>{escape(r['model_version'])}</td><td>{escape(r['window_end'])}</td><td>{r['n_rows']}</td>"
            f'<td class="status-{escape(r["status"])}">{escape(r["status"])}{quality}</td><td>{share}</td>'
            f"<td>{'yes' if r['is_breach'] else ''}</td>"
            f'<td><a class="run-json" href="/v1/drift/runs/{r["id"]}">JSON</a> &middot; '
            f'<a class="run-report" href="/v1/drift/runs/{r["id"]}/report.html">report</a></td></tr>'
        )
    return f'<table id="runs">{head}{"".join(rows)}</table>'
