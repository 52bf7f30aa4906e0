"""Evidently HTML report of one drift run's window against the reference of the model version it served.

The page leads with driftloop's own decision, read from the stored run: per feature the method, statistic
and threshold driftloop used (a noise-floor-raised or corrected threshold included), the domain classifier
and the missing-value test. Evidently's panels follow; they apply Evidently's fixed defaults to bounded
samples and may say otherwise, which the lead says. Both sides are bounded samples (<= 5000 rows), so a
report renders in seconds whatever the window size. Runs are immutable, so the HTML is cached on disk per
run.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session

from retrain.clean import MAX_ABS, usable_rows
from service.dashboard import queries
from service.dashboard.history import model_href
from service.db.tables import DriftRun
from service.monitor.references import load_reference

SAMPLE_ROWS = 5000
DROPPED = "dropped_rows"  # frame.attrs key: rows left out as unusable


class ReportUnavailable(Exception):
    """The run exists but its report cannot be built (no reference, no logged rows): the caller's 409."""


def cache_path(reports_dir: Path, run: queries.RunRef) -> Path:
    # The digest ties the file to this run, not just its id: a re-created database reuses ids.
    digest = hashlib.sha256(f"{run.window_key}|{run.started_at.isoformat()}".encode()).hexdigest()[:16]
    return reports_dir / f"run-{run.id}-{digest}.html"


def build_report(
    engine: sa.Engine, run: queries.RunRef, reports_dir: Path, *, max_rows: int = SAMPLE_ROWS
) -> Path:
    """The cached report file of `run`, rendering it first if needed (blocking: call off the event loop)."""
    path = cache_path(reports_dir, run)
    if path.exists():
        return path
    current, reference, numeric, categorical = report_frames(engine, run, max_rows=max_rows)
    heading = _heading(run) + verdict_html(_summary(engine, run.id))
    page = render_html(
        current, reference, numeric=numeric, categorical=categorical, title=_title(run), heading=heading
    )
    reports_dir.mkdir(parents=True, exist_ok=True)
    # Write-then-rename: a concurrent reader sees the whole report or none.
    fd, tmp = tempfile.mkstemp(dir=reports_dir, prefix=".report-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(page)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def report_frames(
    engine: sa.Engine, run: queries.RunRef, *, max_rows: int
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """(current, reference, numeric columns, categorical columns), typed alike on both sides."""
    stored = load_reference(engine, model_name=run.model_name, model_version=run.model_version)
    if stored is None:
        raise ReportUnavailable(
            f"no reference profile is stored for model {run.model_name!r} version {run.model_version!r}; "
            "register the version with its training data (or run `driftloop bootstrap`) to get reports"
        )
    rows = queries.window_feature_rows(engine, run, max_rows=max_rows)
    if not rows:
        raise ReportUnavailable(
            f"run {run.id} has no logged predictions left in its window "
            f"({run.window_start.isoformat()} .. {run.window_end.isoformat()})"
        )
    current, unreadable = _readable(rows)
    reference = stored.sample
    if len(reference) > max_rows:
        reference = reference.sample(n=max_rows, random_state=0)
    kinds = {name: stored.profile.features[name].kind for name in stored.profile.feature_names}
    columns = [
        c
        for c in kinds
        if c in current.columns
        and c in reference.columns
        and current[c].notna().any()
        and reference[c].notna().any()
    ]
    if not columns:
        raise ReportUnavailable(f"run {run.id}: the window and the reference share no non-empty feature")
    numeric = [c for c in columns if kinds[c] == "numeric"]
    categorical = [c for c in columns if kinds[c] != "numeric"]
    current, dropped = usable_rows(_typed(current, numeric, categorical), numeric)
    reference, dropped_reference = usable_rows(_typed(reference, numeric, categorical), numeric)
    if current.empty:
        raise ReportUnavailable(f"run {run.id}: no row of the window has usable numbers")
    current.attrs[DROPPED] = dropped + unreadable
    reference.attrs[DROPPED] = dropped_reference
    return current.reset_index(drop=True), reference.reset_index(drop=True), numeric, categorical


def _readable(rows: list[str]) -> tuple[pd.DataFrame, int]:
    """The logged feature rows as a frame, and how many could not be read (a number beyond a double)."""
    records = []
    for row in rows:
        with contextlib.suppress(orjson.JSONDecodeError):
            records.append(orjson.loads(row))
    return pd.DataFrame.from_records(records), len(rows) - len(records)


def _typed(df: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=range(len(df)))
    values = df.reset_index(drop=True)
    for c in numeric:
        out[c] = pd.to_numeric(values[c], errors="coerce").astype(float)
    for c in categorical:
        # JSON may carry 1 and "1" for one category; compare them as the strings the model saw.
        out[c] = values[c].astype(object).map(str, na_action="ignore")
    return out


def render_html(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    title: str = "",
    heading: str = "",
) -> str:
    """A standalone Evidently `DataDriftPreset` page (its scripts are inlined: no network needed)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    page: str = snapshot.get_html_str(as_iframe=False)
    if title:
        page = page.replace("</head>", f"<title>{html.escape(title)}</title>\n</head>", 1)
    heading += _dropped_note(current, reference)
    if heading:
        page = page.replace("<body>", f"<body>\n{heading}", 1)
    return page


def _dropped_note(current: pd.DataFrame, reference: pd.DataFrame) -> str:
    """Says how many rows were left out as unusable (non-finite or beyond the bound), if any."""
    window, ref = current.attrs.get(DROPPED, 0), reference.attrs.get(DROPPED, 0)
    if not window and not ref:
        return ""
    return (
        f'<p id="driftloop-dropped" data-window="{window}" data-reference="{ref}" '
        f'style="font-family:sans-serif;padding:0 24px">Left out as unusable (a number non-finite or '
        f"beyond &plusmn;{MAX_ABS:g}): {window} row(s) of the window, {ref} of the reference.</p>"
    )


def _title(run: queries.RunRef) -> str:
    return f"driftloop run {run.id}: {run.model_name} v{run.model_version}"


def _heading(run: queries.RunRef) -> str:
    e = html.escape
    title = f"Run {run.id}: {run.model_name} v{run.model_version}"
    return (
        f'<header id="driftloop-run" data-run-id="{run.id}" style="font-family:sans-serif;padding:8px 24px">'
        f'<a href="/">driftloop</a> &rsaquo; <a href="{model_href(run.model_name)}">{e(run.model_name)}</a> '
        f"&rsaquo; <strong>{e(title)}</strong> &middot; {e(run.kind)} check, "
        f"status <code>{e(run.status)}</code>, {run.n_rows} rows, "
        f"window {e(run.window_start.isoformat())} .. {e(run.window_end.isoformat())}"
        f' &middot; <a href="/v1/drift/runs/{run.id}">JSON</a></header>'
    )


def _summary(engine: sa.Engine, run_id: int) -> dict[str, Any]:
    # the run's stored result; a query of its own until queries.RunRef carries the summary
    with Session(engine) as session:
        run = session.get(DriftRun, run_id)
        text = run.summary if run is not None else None
    loaded = orjson.loads(text) if text else {}
    return loaded if isinstance(loaded, dict) else {}


def _num(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))


def verdict_html(summary: dict[str, Any]) -> str:
    """driftloop's decision of a drift run (its stored ``DatasetDriftResult.to_dict()``) as an HTML lead;
    empty for runs without per-feature results (performance runs, empty windows)."""
    features = [f for f in summary.get("features") or [] if isinstance(f, dict)]
    if not features:
        return ""
    e = html.escape
    changed = [f for f in features if f.get("is_drift") or f.get("missing_is_drift")]
    reasons = [
        f"{len(changed)} of {len(features)} features changed (share {summary.get('drift_share') or 0.0:.2f};"
        f" the dataset drifts at {summary.get('drift_share_threshold')})"
    ]
    mv = summary.get("multivariate")
    if isinstance(mv, dict):
        reasons.append(
            f"domain classifier AUC {_num(mv.get('auc'))} vs threshold {_num(mv.get('threshold'))} "
            f"(p={_num(mv.get('p_val'))}, alpha {_num(mv.get('alpha'))}): "
            + ("drift, which alone makes the dataset drift" if mv.get("is_drift") else "no drift")
        )
    if summary.get("data_quality"):
        names = ", ".join(map(str, summary.get("data_quality_features") or []))
        reasons.append(f"missing-value breach in {names} (data quality; counted as changed features)")
    rows = "".join(
        f"<tr><td>{e(str(f.get('name')))}</td><td>{e(str(f.get('method')))}</td>"
        f"<td>{_num(f.get('statistic'))}</td><td>{_num(f.get('p_val'))}</td><td>{_num(f.get('threshold'))}</td>"
        f"<td>{_num(f.get('missing_rate_ref'))} &rarr; {_num(f.get('missing_rate_cur'))}</td>"
        f"<td><code>{e(str(f.get('status')))}</code></td><td>{e(str(f.get('reason') or ''))}</td></tr>"
        for f in features
    )
    return (
        '<section id="driftloop-verdict" style="font-family:sans-serif;padding:8px 24px">'
        f"<h2>driftloop's decision: <code>{e(str(summary.get('status')))}</code></h2>"
        f"<ul>{''.join(f'<li>{e(r)}</li>' for r in reasons)}</ul>"
        '<table border="1" cellpadding="4" style="border-collapse:collapse">'
        "<tr><th>feature</th><th>method</th><th>statistic</th><th>p_val</th><th>threshold used</th>"
        "<th>missing rate</th><th>status</th><th>reason</th></tr>"
        f"{rows}</table>"
        "<p>This decision is the one the monitor acted on. Evidently's panels below apply Evidently's fixed "
        "default thresholds to bounded samples, without driftloop's noise floor, effect-size floor, domain "
        "classifier or missing-value test, and may disagree.</p></section>"
    )
