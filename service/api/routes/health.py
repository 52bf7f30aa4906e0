"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from service import metrics
from service.api.deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _ping(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(asyncio.to_thread(_ping, runtime.engine), timeout=5)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {exc.__class__.__name__}"
    holder = runtime.holder
    checks["model"] = (
        f"version {holder.current.version}" if holder.loaded else f"not loaded ({holder.last_error})"
    )
    ready = checks["database"] == "ok" and holder.loaded
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus_metrics(runtime: RuntimeDep) -> Response:
    metrics.LOG_QUEUE.set(runtime.writer.pending)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
