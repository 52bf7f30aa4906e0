"""One row per watched model: champion, the last window's traffic and labels, drift / performance status,
open episodes, the last retrain and whether automation is paused.

`runtime.model_names` is read per call (the watch API changes it at run time). Each model costs a fixed
number of reads, each a limit-1 or key lookup on an index, plus one labeled-row count bounded by the
window (`LABEL_CAP`), so the page costs O(models), never O(log).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session

from service.config import Settings
from service.dashboard.progress import index_range
from service.db.tables import DriftRun, Episode, FeatureResult, Feedback, Prediction, RetrainJob
from service.monitor import automation
from service.runtime import Runtime
from service.serving.fleet import UnknownModel

R = DriftRun.__table__  # type: ignore[attr-defined]
P = Prediction.__table__  # type: ignore[attr-defined]
F = Feedback.__table__  # type: ignore[attr-defined]
E = Episode.__table__  # type: ignore[attr-defined]
J = RetrainJob.__table__  # type: ignore[attr-defined]
FR = FeatureResult.__table__  # type: ignore[attr-defined]
LABEL_CAP = 100_000  # a window's labeled rows are counted up to this


def champion(runtime: Runtime, name: str) -> dict[str, Any]:
    """The model's champion as this process serves it."""
    try:
        holder = runtime.slot(name).holder
    except UnknownModel:  # watched (another process added it) but not served by this one yet
        return {"name": name, "version": None, "loaded_at": None, "error": "not served by this process yet"}
    if holder.loaded:
        model = holder.current
        loaded_at = datetime.fromtimestamp(model.loaded_at, UTC).isoformat()
        return {"name": model.name, "version": model.version, "loaded_at": loaded_at, "error": None}
    return {"name": holder.name, "version": None, "loaded_at": None, "error": holder.last_error}


def settings_for(runtime: Runtime, name: str) -> Settings:
    try:
        return runtime.settings_for(name)
    except (KeyError, UnknownModel):  # watched at run time without a models-file entry: global settings
        return runtime.settings.model_copy(update={"model_name": name})


def _latest(conn: sa.Connection, name: str, kind: str) -> Any:
    stmt = (
        sa.select(R.c.id, R.c.model_version, R.c.window_start, R.c.window_end, R.c.n_rows, R.c.status,
                  R.c.drift_share, R.c.is_breach, R.c.summary)
        .where(R.c.model_name == name, R.c.kind == kind)
        .order_by(R.c.id.desc())
        .limit(1)
    )  # fmt: skip
    return conn.execute(stmt).first()


def labels_in_window(conn: sa.Connection, name: str, run: Any) -> int:
    """Labeled predictions among a drift run's rows (its `seq` range, else its time span), up to the cap."""
    window = orjson.loads(run.summary).get("window") or {}
    first, last = window.get("first_seq"), window.get("last_seq")
    cap = min(LABEL_CAP, max(int(run.n_rows), 1))  # the window's own size: the planner joins it row by row
    if isinstance(first, int) and isinstance(last, int):
        rows = index_range(name, run.model_version, P.c.seq, first - 1, last, cap=cap)
    else:  # a time window: its span (end included: a run's window_end is its last row's time)
        end = run.window_end + timedelta(microseconds=1)
        rows = index_range(name, run.model_version, P.c.created_at, run.window_start, end, cap=cap)
        if isinstance(window.get("seq_horizon"), int):
            rows = rows.where(P.c.seq <= window["seq_horizon"])
    inner = rows.subquery()
    # a correlated lookup per row (the feedback primary key), never a join PostgreSQL may hash over the
    # whole feedback table: the cost stays the window's, whatever the number of labels stored
    label = sa.select(F.c.prediction_id).where(F.c.prediction_id == inner.c.id).scalar_subquery()
    return int(conn.execute(sa.select(sa.func.count(label)).select_from(inner)).scalar_one())


def _run(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"id": row.id, "model_version": row.model_version, "window_end": row.window_end.isoformat(),
            "n_rows": row.n_rows, "status": row.status, "is_breach": bool(row.is_breach)}  # fmt: skip


def _performance(conn: sa.Connection, row: Any) -> dict[str, Any] | None:
    out = _run(row)
    if out is None:
        return None
    summary = orjson.loads(row.summary)
    metric = summary.get("metric")
    value = (summary.get("metrics") or {}).get(metric)
    out.update(metric=metric, value=value, message=summary.get("message"))
    if metric is None:  # a run without the summary fields: its one feature result holds the metric
        stmt = sa.select(FR.c.feature, FR.c.statistic).where(FR.c.run_id == row.id).limit(1)
        found = conn.execute(stmt).first()
        if found is not None:
            out["metric"], out["value"] = found.feature, found.statistic
    return out


def _estimated(row: Any) -> dict[str, Any] | None:
    out = _run(row)
    if out is None:
        return None
    summary = orjson.loads(row.summary)
    metric = summary.get("metric")
    found = [m for m in (summary.get("estimate") or {}).get("metrics", []) if m.get("metric") == metric]
    value = found[0] if found else {}
    out.update(metric=metric, value=value.get("value"), lower=value.get("lower"), upper=value.get("upper"))
    return out


def _last_retrain(conn: sa.Connection, name: str) -> dict[str, Any] | None:
    stmt = (
        sa.select(J.c.id, J.c.status, J.c.created_at, J.c.finished_at, J.c.result_version)
        .where(J.c.model_name == name)
        .order_by(J.c.id.desc())
        .limit(1)
    )
    row = conn.execute(stmt).first()
    if row is None:
        return None
    at = row.finished_at or row.created_at
    return {"id": row.id, "status": row.status, "at": at.isoformat() if at else None,
            "finished": row.finished_at is not None, "result_version": row.result_version}  # fmt: skip


def model_row(runtime: Runtime, name: str) -> dict[str, Any]:
    """Blocking (database reads)."""
    settings = settings_for(runtime, name)
    champ = champion(runtime, name)
    with runtime.engine.connect() as conn:
        drift = _latest(conn, name, "drift")
        episodes = conn.execute(
            sa.select(E.c.id, E.c.kind, E.c.opened_at)
            .where(E.c.model_name == name, E.c.status == "open")
            .order_by(E.c.id)
        ).all()  # at most one open episode per kind (a unique index)
        last_window = _run(drift)
        if last_window is not None:
            last_window["labeled"] = labels_in_window(conn, name, drift)
            last_window["data_quality_features"] = (
                orjson.loads(drift.summary).get("data_quality_features") or []
            )
        row = {
            "name": name,
            "default": name == runtime.settings.model_name,
            "champion": champ,
            "last_window": last_window,
            "performance": _performance(conn, _latest(conn, name, "performance")),
            # off: no estimated run to look for (a search for an absent kind walks the model's runs)
            "estimated": _estimated(_latest(conn, name, "estimated_performance"))
            if settings.estimated_performance
            else None,
            "open_episodes": [
                {"id": e.id, "kind": e.kind, "opened_at": e.opened_at.isoformat()} for e in episodes
            ],  # fmt: skip
            "last_retrain": _last_retrain(conn, name),
        }
    with Session(runtime.engine) as session:
        found = automation.current(session, name, settings)
    resumes = found.resumes_at.isoformat() if found.resumes_at else None
    row["automation"] = {"state": found.state, "reason": found.reason, "resumes_at": resumes}
    return row


def overview_data(runtime: Runtime) -> dict[str, Any]:
    """Every watched model's row, in the configured order (the default model first)."""
    names = runtime.model_names
    return {
        "default_model": runtime.settings.model_name,
        "models": [model_row(runtime, name) for name in names],
        "generated_at": datetime.now(UTC).isoformat(),
    }
