"""Liveness, readiness, MLflow's health protocol (/ping, /health, /version) and Prometheus metrics."""

from __future__ import annotations

import asyncio
from functools import cache
from importlib.metadata import version as package_version

import sqlalchemy as sa
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from service import metrics
from service.api.deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@cache
def mlflow_version() -> str:
    """What MLflow's scoring server answers on /version (read from the package metadata: importing MLflow
    costs seconds and the serving path never needs it)."""
    return package_version("mlflow")


def model_ping(loaded: bool) -> Response:
    """MLflow's /ping: a newline as application/json, 200 when the model is loaded. MLflow answers 404
    when it has no model (it cannot start without one); a model that is not loaded *yet* is a 503 here,
    so a load balancer retries instead of taking the route for missing. Any non-200 fails
    `ScoringServerClient.ping`.

    These three answers copy MLflow's bytes, which are not JSON despite their content type, so they stay
    out of /openapi.json (whose JSON responses are checked by schemathesis)."""
    return Response("\n", status_code=200 if loaded else 503, media_type="application/json")


@router.get("/ping", include_in_schema=False)  # MLflow's bytes: not JSON
async def ping(runtime: RuntimeDep) -> Response:
    return model_ping(runtime.holder.loaded)


@router.get("/health", include_in_schema=False)  # MLflow's bytes: not JSON
async def health(runtime: RuntimeDep) -> Response:
    """The same as /ping, as in MLflow's scoring server."""
    return model_ping(runtime.holder.loaded)


@router.get("/version", include_in_schema=False)  # MLflow's bytes: not JSON
async def version() -> Response:
    """The MLflow version, as MLflow's scoring server answers it (text in an application/json answer)."""
    return Response(mlflow_version(), media_type="application/json")


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
