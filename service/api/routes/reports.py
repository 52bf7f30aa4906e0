"""`GET /v1/drift/runs/{id}/report.html`: the Evidently report of one run, rendered once and cached."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import FileResponse

from service.api.deps import RuntimeDep
from service.dashboard import queries
from service.dashboard.report import ReportUnavailable, build_report, cache_path

router = APIRouter(tags=["drift"])

# One render per report file at a time in this process; a second request waits and reads the cache.
_rendering: dict[str, asyncio.Lock] = {}


@router.get(
    "/v1/drift/runs/{run_id}/report.html",
    response_class=FileResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "Standalone Evidently data drift report."},
        404: {"description": "Unknown run id."},
        409: {"description": "The run's reference or window rows are missing."},
    },
)
async def run_report(runtime: RuntimeDep, run_id: int = Path(ge=1, le=2**31 - 1)) -> FileResponse:
    run = await asyncio.to_thread(queries.get_run, runtime.engine, run_id)
    if run is None:
        raise HTTPException(404, f"drift run {run_id} not found")
    reports_dir = runtime.settings.data_dir / "reports"
    key = str(cache_path(reports_dir, run))
    lock = _rendering.setdefault(key, asyncio.Lock())
    try:
        async with lock:
            path = await asyncio.to_thread(build_report, runtime.engine, run, reports_dir)
    except ReportUnavailable as exc:
        raise HTTPException(409, str(exc)) from exc
    finally:
        if not lock.locked():
            _rendering.pop(key, None)
    return FileResponse(path, media_type="text/html; charset=utf-8")
