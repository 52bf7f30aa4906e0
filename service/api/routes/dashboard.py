"""The people's pages and the documents they are drawn from.

`/` is the overview of every watched model; `/dashboard/models/{name}` is one model's page; the JSON twins
are `GET /v1/dashboard/overview` and `GET /v1/dashboard/data?model=` (default: the default model).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from service.api.deps import RuntimeDep
from service.api.routes._responses import errors
from service.dashboard.data import PLOT_RUNS, RUNS_TABLE, dashboard_data
from service.dashboard.overview import overview_data
from service.dashboard.overview_page import render_overview, render_unknown
from service.dashboard.page import render_page
from service.runtime import Runtime
from service.serving.fleet import UnknownModel

router = APIRouter(tags=["dashboard"])


def _refresh(runtime: Runtime) -> int:
    return max(30, int(runtime.settings.drift_check_interval))


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def overview(runtime: RuntimeDep) -> HTMLResponse:
    data = await asyncio.to_thread(overview_data, runtime)
    return HTMLResponse(render_overview(data, refresh_seconds=_refresh(runtime)))


@router.get("/dashboard/models/{name}", response_class=HTMLResponse, include_in_schema=False)
async def model_page(runtime: RuntimeDep, name: str) -> HTMLResponse:
    try:
        data = await asyncio.to_thread(dashboard_data, runtime, name)
    except UnknownModel as exc:
        return HTMLResponse(render_unknown(exc.name, exc.known), status_code=404)
    return HTMLResponse(render_page(data, refresh_seconds=_refresh(runtime), plot_runs=PLOT_RUNS))


@router.get("/v1/dashboard/overview")
async def overview_json(runtime: RuntimeDep) -> dict[str, Any]:
    """Every watched model: champion, last window's rows and labels, latest drift / performance /
    estimated status, open episodes, last retrain, automation state."""
    return await asyncio.to_thread(overview_data, runtime)


@router.get("/v1/dashboard/data", responses=errors(404))
async def dashboard_json(
    runtime: RuntimeDep,
    model: str | None = Query(None, description="A watched model (default: the default model)."),
    runs: int = Query(RUNS_TABLE, ge=1, le=500, description="Rows of the latest-runs table."),
    plot_runs: int = Query(PLOT_RUNS, ge=1, le=1000, description="Drift runs per feature series."),
) -> dict[str, Any]:
    """A model's champion, open episodes, latest runs, per-feature drift series (oldest first), progress
    toward the next window, version and retrain history. An unknown model is a 404 naming the known."""
    return await asyncio.to_thread(dashboard_data, runtime, model, runs=runs, plot_runs=plot_runs)
