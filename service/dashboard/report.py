"""Evidently HTML report of one drift run's window against the reference of the model version it served.

Both sides are bounded samples (<= 5000 rows), so a report renders in seconds whatever the window size. Runs
are immutable, so the HTML is cached on disk per run.
"""

from __future__ import annotations

import hashlib
import html
import os
import tempfile
from pathlib import Path

import orjson
import pandas as pd
import sqlalchemy as sa

from service.dashboard import queries
from service.monitor.references import load_reference

SAMPLE_ROWS = 5000


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
    page = render_html(
        current, reference, numeric=numeric, categorical=categorical, title=_title(run), heading=_heading(run)
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
    current = pd.DataFrame.from_records([orjson.loads(r) for r in rows])
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
    return (
        _typed(current, numeric, categorical),
        _typed(reference, numeric, categorical),
        numeric,
        categorical,
    )


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
    if heading:
        page = page.replace("<body>", f"<body>\n{heading}", 1)
    return page


def _title(run: queries.RunRef) -> str:
    return f"driftloop run {run.id}: {run.model_name} v{run.model_version}"


def _heading(run: queries.RunRef) -> str:
    e = html.escape
    title = f"Run {run.id}: {run.model_name} v{run.model_version}"
    return (
        f'<header id="driftloop-run" data-run-id="{run.id}" style="font-family:sans-serif;padding:8px 24px">'
        f'<a href="/">driftloop</a> &rsaquo; <strong>{e(title)}</strong> &middot; {e(run.kind)} check, '
        f"status <code>{e(run.status)}</code>, {run.n_rows} rows, "
        f"window {e(run.window_start.isoformat())} .. {e(run.window_end.isoformat())}"
        f' &middot; <a href="/v1/drift/runs/{run.id}">JSON</a></header>'
    )
