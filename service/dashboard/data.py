"""What a model's dashboard page shows, as one JSON-ready document (the page and its JSON share it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.dashboard import estimation, history, loop_state, progress, queries, traffic
from service.dashboard.overview import champion, settings_for
from service.runtime import Runtime
from service.serving.fleet import UnknownModel

RUNS_TABLE = 20
PLOT_RUNS = 50


def known(runtime: Runtime, name: str) -> None:
    """Raise `UnknownModel` (naming the watched ones) unless `name` is watched now."""
    names = runtime.model_names
    if name not in names:
        raise UnknownModel(name, names)


def dashboard_data(
    runtime: Runtime, name: str | None = None, *, runs: int = RUNS_TABLE, plot_runs: int = PLOT_RUNS
) -> dict[str, Any]:
    """The model's page data (default: the default model). Blocking (database reads): call off the loop."""
    name = runtime.settings.model_name if name is None else name
    known(runtime, name)
    settings = settings_for(runtime, name)
    engine = runtime.engine
    champ = champion(runtime, name)
    rollups = traffic.daily_rollups(engine, model_name=name)
    return {
        "model_name": name,
        "champion": champ,
        "automation": loop_state.automation_state(engine, settings),
        "performance_evidence": loop_state.latest_evidence(engine, model_name=name),
        "open_episodes": queries.open_episodes(engine, model_name=name),
        "runs": queries.latest_runs(engine, model_name=name, limit=runs),
        "features": queries.feature_series(engine, model_name=name, runs=plot_runs),
        "performance": queries.feature_series(engine, model_name=name, runs=plot_runs, kind="performance"),
        "traffic": rollups,
        "estimation": estimation.estimation_data(engine, model_name=name, runs=plot_runs),
        "next_window": progress.next_window(engine, name=name, version=champ["version"], settings=settings),
        "next_label_window": progress.next_window(
            engine, name=name, version=champ["version"], settings=settings, kind="performance"
        ),
        "versions": history.version_history(
            engine, model_name=name, champion=champ["version"], traffic=rollups
        ),
        "retrains": history.retrain_history(engine, model_name=name),
        "generated_at": datetime.now(UTC).isoformat(),
    }
