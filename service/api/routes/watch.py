"""Which models this deployment watches: the list, and adding or removing one at run time (admin).

The configured models (DRIFTLOOP_MODEL_NAME, DRIFTLOOP_MODELS, the models file) are the static list; a
PUT adds a registered model on top of it, stored in `watched_models` and picked up by every API process
within DRIFTLOOP_MODEL_POLL_SECONDS (this one at once). A DELETE removes a model added that way; a
configured model is the configuration's to remove (409).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from service.api.deps import AdminDep, RuntimeDep, SessionDep
from service.api.routes._responses import errors
from service.model_settings import NAME_PATTERN
from service.runtime import Runtime
from service.serving import watched

router = APIRouter(prefix="/v1/models", tags=["models"], responses=errors(400, 401, 403, 422, 503))

Name = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=NAME_PATTERN,
        description="A registered model's name (no '/', ',' or control characters).",
    ),
]


class WatchedPublic(BaseModel):
    name: str
    source: Literal["configured", "watched"] = Field(
        description="`configured`: DRIFTLOOP_MODEL_NAME, DRIFTLOOP_MODELS or the models file; "
        "`watched`: added by PUT /v1/models/{name}/watch."
    )
    default: bool = Field(description="The model of /v1/predict and /invocations.")
    champion_version: str | None = Field(description="The champion this process serves; none: not loaded.")
    ready: bool
    error: str | None = Field(description="Why the champion is not loaded (or the last refresh failed).")


def watched_public(runtime: Runtime, name: str) -> WatchedPublic:
    holder = runtime.slot(name).holder
    return WatchedPublic(
        name=name,
        source="configured" if name in runtime.static_names else "watched",
        default=name == runtime.holder.name,
        champion_version=holder.current.version if holder.loaded else None,
        ready=holder.loaded,
        error=holder.last_error,
    )


@router.get("/watched", response_model=list[WatchedPublic])
async def list_watched(runtime: RuntimeDep) -> list[WatchedPublic]:
    """Every model this process serves and watches, with its champion and readiness (no registry call)."""
    return [watched_public(runtime, name) for name in runtime.model_names]


async def _registered(runtime: Runtime, name: str) -> None:
    if runtime.model_exists is None:
        raise HTTPException(503, "no model registry configured for this process")
    try:
        exists = await asyncio.to_thread(runtime.model_exists, name)
    except Exception as exc:
        raise HTTPException(
            503, f"model registry unreachable: {exc.__class__.__name__}: {exc}"[:500]
        ) from None
    if not exists:
        raise HTTPException(
            404, f"registered model {name!r} not found in the MLflow registry: register it first"
        )


async def _sync(runtime: Runtime) -> None:
    """Apply the stored change in this process now (the others do at their next poll)."""
    try:
        await runtime.sync_watched()
    except Exception as exc:  # the change is committed: the poller applies it once the database answers
        raise HTTPException(
            503,
            f"stored, but this process could not re-read the watched models ({exc.__class__.__name__}); "
            "it applies the change within DRIFTLOOP_MODEL_POLL_SECONDS",
        ) from None


def _add(session: Session, name: str) -> bool:
    try:
        added = watched.add_watch(session, name)
        session.commit()
    except IntegrityError:  # another process added it between our read and our commit
        session.rollback()
        return False
    return added


@router.put(
    "/{name}/watch",
    response_model=WatchedPublic,
    dependencies=[AdminDep],
    responses={201: {"model": WatchedPublic, "description": "Now watched."}, **errors(404)},
)
async def watch(name: Name, runtime: RuntimeDep, session: SessionDep, response: Response) -> WatchedPublic:
    """Serve and watch a registered model (idempotent: 201 when added, 200 when watched already). Its
    champion loads at once; a model without one is listed `ready: false` (and in /readyz) until it has."""
    if name in runtime.static_names:
        return watched_public(runtime, name)
    await _registered(runtime, name)
    added = await run_in_threadpool(_add, session, name)
    await _sync(runtime)
    response.status_code = 201 if added else 200
    return watched_public(runtime, name)


def _remove(session: Session, name: str) -> bool:
    removed = watched.remove_watch(session, name)
    session.commit()
    return removed


@router.delete("/{name}/watch", status_code=204, dependencies=[AdminDep], responses=errors(404, 409))
async def unwatch(name: Name, runtime: RuntimeDep, session: SessionDep) -> None:
    """Stop serving and watching a model added by PUT (every process within the poll interval). Its
    logged predictions, runs and episodes stay; a configured model is refused with 409."""
    if name in runtime.static_names:
        raise HTTPException(
            409,
            f"model {name!r} is configured (DRIFTLOOP_MODEL_NAME, DRIFTLOOP_MODELS or the models file): "
            "remove it there and restart; only models added by PUT /v1/models/{name}/watch can be "
            "removed at run time",
        )
    if not await run_in_threadpool(_remove, session, name):
        raise HTTPException(
            404, f"model {name!r} is not watched; watched models: {', '.join(runtime.model_names)}"
        )
    await _sync(runtime)
