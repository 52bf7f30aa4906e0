"""The FastAPI application: `create_app()` with a lifespan that owns the poller, batcher and writer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from service import metrics
from service.api import docs, errors
from service.api.middleware import GuardAndMeasure
from service.api.routes import automation as automation_routes
from service.api.routes import dashboard, feedback, health, invocations, predict, reports
from service.api.routes import drift as drift_routes
from service.api.routes import episodes as episode_routes
from service.api.routes import models as models_routes
from service.api.routes import retrain as retrain_routes
from service.api.routes import watch as watch_routes
from service.api.routes import webhooks as webhook_routes
from service.config import Settings, get_settings
from service.db.engine import ensure_migrated, make_engine
from service.model_settings import load_models
from service.runtime import Runtime, make_registry, registry_loader
from service.serving import fleet
from service.serving.holder import LoadedModel
from service.serving.log_writer import PredictionLogWriter

if TYPE_CHECKING:
    from retrain.registry import Registry

log = logging.getLogger("driftloop")

Loader = tuple[Callable[[str], str | None], Callable[[str, str], LoadedModel]]
Extra = Callable[[Runtime], AbstractAsyncContextManager[Any]]


def create_app(
    settings: Settings | None = None,
    *,
    loader: Loader | None = None,
    extras: tuple[Extra, ...] = (),
    registry: Registry | None = None,
    model_exists: Callable[[str], bool] | None = None,
) -> FastAPI:
    """Build the app. `loader` replaces the MLflow registry (tests; `model_exists` then says which names
    are registered); `extras` are context managers run for the app's lifetime (the embedded scheduler)."""
    settings = settings or get_settings()
    model_set = load_models(settings)  # a bad models file fails here, naming the key

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url)
        ensure_migrated(engine)
        registry_ = registry if registry is not None or loader is not None else make_registry(settings)
        if loader is not None:
            resolve, fetch = loader
        else:
            assert registry_ is not None
            resolve, fetch = registry_loader(registry_)

        def make_slot(name: str) -> fleet.ModelSlot:
            slot = fleet.make_slot(
                name,
                resolve=resolve,
                fetch=fetch,
                poll_seconds=settings.model_poll_seconds,
                max_rows=settings.batch_max_rows,
                wait_ms=settings.batch_wait_ms,
            )
            slot.batcher.batch_sizes = metrics.MODEL_BATCH_ROWS.labels(name).observe
            return slot

        slots = {name: make_slot(name) for name in model_set.names}
        writer = PredictionLogWriter(engine, max_rows=settings.log_max_rows, flush_ms=settings.log_flush_ms)

        def observe(model: str, rows: int, lag: float) -> None:
            metrics.LOG_BATCH_ROWS.labels(model).observe(rows)
            metrics.LOG_LAG.labels(model).observe(lag)

        writer.observe = observe
        default = slots[model_set.default]
        runtime = Runtime(
            settings=settings,
            engine=engine,
            holder=default.holder,
            batcher=default.batcher,
            writer=writer,
            registry=registry_,
            models=slots,
            model_set=model_set,
            make_slot=make_slot,
            model_exists=model_exists or (registry_.has_model if registry_ is not None else None),
        )
        app.state.runtime = runtime
        loaded = await fleet.start(slots.values())
        for name, ok in loaded.items():
            if not ok:  # the others serve; /readyz and /models/{name}/ping say which is missing
                log.warning("starting without a champion for %s: %s", name, slots[name].holder.last_error)
        await runtime.sync_watched()  # the models watched at run time (PUT /v1/models/{name}/watch)
        watcher = asyncio.create_task(runtime.watch_forever(settings.model_poll_seconds), name="watcher")
        writer.start()
        try:
            async with _enter_all(extras, runtime):
                yield
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await runtime.stop_models()
            await writer.stop()
            engine.dispose()

    app = FastAPI(
        title="driftloop",
        version="0.1.0",
        description="Serve the MLflow champion, log every prediction, watch drift, alert, retrain.",
        lifespan=lifespan,
        docs_url=None,  # served offline by service.api.docs
        redoc_url=None,
    )
    docs.install(app)
    app.add_middleware(GuardAndMeasure, max_body_bytes=settings.max_body_bytes)
    errors.install(app)
    for module in (
        predict,
        invocations,
        feedback,
        health,
        retrain_routes,
        automation_routes,
        watch_routes,
        models_routes,
        drift_routes,
        episode_routes,
        reports,
        dashboard,
        webhook_routes,
    ):
        app.include_router(module.router)
    return app


@asynccontextmanager
async def _enter_all(extras: tuple[Extra, ...], runtime: Runtime) -> AsyncIterator[None]:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        for extra in extras:
            await stack.enter_async_context(extra(runtime))
        yield


def app_from_env() -> FastAPI:
    """uvicorn factory: settings from the environment, embedded scheduler when configured."""
    settings = get_settings()
    extras: tuple[Extra, ...] = ()
    if settings.embedded_scheduler:
        from service.scheduler import embedded_scheduler

        extras = (embedded_scheduler,)
    return create_app(settings, extras=extras)
