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
from service.serving.holder import ModelHolder

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


# The same three per model, so `ScoringServerClient(host, f"{port}/models/{name}")` works unchanged.
@router.get("/models/{name}/ping", include_in_schema=False)
@router.get("/models/{name}/health", include_in_schema=False)
async def model_ping_route(name: str, runtime: RuntimeDep) -> Response:
    return model_ping(runtime.slot(name).holder.loaded)  # an unknown name is a 404, as MLflow's


@router.get("/models/{name}/version", include_in_schema=False)
async def model_version(name: str, runtime: RuntimeDep) -> Response:
    runtime.slot(name)
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
    checks["model"] = _model_check(holder)  # the default model
    models = {name: _model_check(runtime.slot(name).holder) for name in runtime.model_names}
    # Ready while any model serves: taking the replica out for one missing champion would stop the
    # others too; `models` says which one is missing and /models/{name}/ping answers 503 for it.
    ready = checks["database"] == "ok" and any(runtime.slot(n).holder.loaded for n in runtime.model_names)
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks, "models": models},
        200 if ready else 503,
    )


def _model_check(holder: ModelHolder) -> str:
    return f"version {holder.current.version}" if holder.loaded else f"not loaded ({holder.last_error})"


def _version_number(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return -1.0


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus_metrics(runtime: RuntimeDep) -> Response:
    waiting = runtime.writer.waiting()
    for name in runtime.model_names:
        holder = runtime.slot(name).holder
        metrics.CHAMPION.labels(name).set(_version_number(holder.current.version) if holder.loaded else -1)
        metrics.LOG_QUEUE.labels(name).set(waiting.get(name, 0))
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
