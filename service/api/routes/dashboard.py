"""The people's page at `/` and the document it is drawn from, `GET /v1/dashboard/data`."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from service.api.deps import RuntimeDep
from service.dashboard.data import PLOT_RUNS, RUNS_TABLE, dashboard_data
from service.dashboard.page import render_page

router = APIRouter(tags=["dashboard"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard(runtime: RuntimeDep) -> HTMLResponse:
    data = await asyncio.to_thread(dashboard_data, runtime)
    refresh = max(30, int(runtime.settings.drift_check_interval))
    return HTMLResponse(render_page(data, refresh_seconds=refresh, plot_runs=PLOT_RUNS))


@router.get("/v1/dashboard/data")
async def dashboard_json(
    runtime: RuntimeDep,
    runs: int = Query(RUNS_TABLE, ge=1, le=500, description="Rows of the latest-runs table."),
    plot_runs: int = Query(PLOT_RUNS, ge=1, le=1000, description="Drift runs per feature series."),
) -> dict[str, Any]:
    """Champion, open episodes, latest runs and per-feature drift series (oldest first)."""
    return await asyncio.to_thread(dashboard_data, runtime, runs=runs, plot_runs=plot_runs)
