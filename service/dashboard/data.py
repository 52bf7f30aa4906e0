"""What the dashboard shows, as one JSON-ready document (the page and `/v1/dashboard/data` share it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.dashboard import estimation, loop_state, queries, traffic
from service.runtime import Runtime

RUNS_TABLE = 20
PLOT_RUNS = 50


def champion(runtime: Runtime) -> dict[str, Any]:
    holder = runtime.holder
    if holder.loaded:
        model = holder.current
        loaded_at = datetime.fromtimestamp(model.loaded_at, UTC).isoformat()
        return {"name": model.name, "version": model.version, "loaded_at": loaded_at, "error": None}
    return {"name": holder.name, "version": None, "loaded_at": None, "error": holder.last_error}


def dashboard_data(runtime: Runtime, *, runs: int = RUNS_TABLE, plot_runs: int = PLOT_RUNS) -> dict[str, Any]:
    """Blocking (database reads): call off the event loop."""
    name = runtime.settings.model_name
    engine = runtime.engine
    return {
        "model_name": name,
        "champion": champion(runtime),
        "automation": loop_state.automation_state(engine, runtime.settings),
        "performance_evidence": loop_state.latest_evidence(engine, model_name=name),
        "open_episodes": queries.open_episodes(engine, model_name=name),
        "runs": queries.latest_runs(engine, model_name=name, limit=runs),
        "features": queries.feature_series(engine, model_name=name, runs=plot_runs),
        "performance": queries.feature_series(engine, model_name=name, runs=plot_runs, kind="performance"),
        "traffic": traffic.daily_rollups(engine, model_name=name),
        "estimation": estimation.estimation_data(engine, model_name=name, runs=plot_runs),
        "generated_at": datetime.now(UTC).isoformat(),
    }
