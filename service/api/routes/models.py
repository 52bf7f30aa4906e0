"""Registered versions with aliases and lineage, the served schema, and rollback (admin)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from fastapi import APIRouter, Body, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import AdminDep, RuntimeDep
from service.api.routes._responses import errors
from service.api.routes.watch import WatchedPublic, watched_public
from service.retraining.champion_lease import ChampionBusy
from service.retraining.rollback import rollback as rollback_champion
from service.runtime import Runtime

if TYPE_CHECKING:
    from retrain.registry import Registry

T = TypeVar("T")

router = APIRouter(prefix="/v1/models", tags=["models"], responses=errors(400, 401, 403, 409, 503))

_LINEAGE_TAGS = ("trigger", "job_id", "episode_id", "drift_run_id", "reason", "validation_status")


class ModelVersionPublic(BaseModel):
    name: str
    version: str
    aliases: list[str]
    created_at: datetime
    run_id: str | None
    metrics: dict[str, float]
    lineage: dict[str, str]
    tags: dict[str, str]


class ModelsResponse(BaseModel):
    name: str
    serving_version: str | None
    versions: list[ModelVersionPublic] = Field(description="The default model's registered versions.")
    models: list[WatchedPublic] = Field(
        description="Every watched model with its champion and readiness (also GET /v1/models/watched)."
    )


class SchemaColumn(BaseModel):
    name: str
    type: str
    required: bool


async def _off_loop(fn: Callable[[Runtime], T], runtime: Runtime) -> T:
    """Run a blocking registry call in a thread; a registry that cannot be reached is a 503."""
    try:
        return await asyncio.to_thread(fn, runtime)
    except HTTPException:
        raise
    except Exception as exc:
        raise HTTPException(
            503, f"model registry unreachable: {exc.__class__.__name__}: {exc}"[:500]
        ) from None


def _registry(runtime: Runtime) -> Registry:
    if runtime.registry is None:
        raise HTTPException(503, "no model registry configured for this process")
    return runtime.registry


def _versions(runtime: Runtime) -> list[ModelVersionPublic]:
    registry = _registry(runtime)
    out = []
    for info in registry.list_versions(runtime.settings.model_name):
        metrics = registry.run_metrics(info.run_id) if info.run_id else {}
        out.append(
            ModelVersionPublic(
                name=info.name,
                version=info.version,
                aliases=list(info.aliases),
                created_at=info.created_at,
                run_id=info.run_id,
                metrics=metrics,
                lineage={k: v for k, v in info.tags.items() if k in _LINEAGE_TAGS},
                tags=dict(info.tags),
            )
        )
    return out


@router.get("", response_model=ModelsResponse)
async def list_models(runtime: RuntimeDep) -> ModelsResponse:
    versions = await _off_loop(_versions, runtime)
    holder = runtime.holder
    return ModelsResponse(
        name=runtime.settings.model_name,
        serving_version=holder.current.version if holder.loaded else None,
        versions=versions,
        models=[watched_public(runtime, name) for name in runtime.model_names],
    )


@router.get("/schema", response_model=list[SchemaColumn])
async def schema(runtime: RuntimeDep) -> list[SchemaColumn]:
    """The request schema of the served version (from its MLflow signature)."""
    return [
        SchemaColumn(name=c.name, type=c.type, required=c.required) for c in runtime.holder.current.columns
    ]


_VERSION = r"^[1-9][0-9]{0,17}$"
_EXPECTED = "The version the caller expects as champion; refused with 409 if it is another (compare-and-set)."


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_champion: str | None = Field(default=None, pattern=_VERSION, description=_EXPECTED)


class RollbackResponse(BaseModel):
    champion: str
    previous_champion: str | None


def _rollback(runtime: Runtime, expected: str | None) -> RollbackResponse:
    from retrain.errors import ChampionChanged, NoPreviousChampion

    try:
        registry = _registry(runtime)
        done = rollback_champion(runtime.engine, registry, runtime.settings, expected_champion=expected)
    except ChampionChanged as exc:
        raise HTTPException(409, f"{exc}; nothing was moved: read the champion again and retry") from None
    except (NoPreviousChampion, ChampionBusy) as exc:
        raise HTTPException(409, str(exc)) from None
    return RollbackResponse(champion=done.champion, previous_champion=done.previous_champion)


@router.post("/rollback", response_model=RollbackResponse, dependencies=[AdminDep])
async def rollback(
    runtime: RuntimeDep,
    body: RollbackRequest | None = Body(default=None),
    expected_champion: str | None = Query(default=None, pattern=_VERSION, description=_EXPECTED),
) -> RollbackResponse:
    """Move `champion` back to `previous_champion`, if the champion is the expected version (the body's or
    the query's `expected_champion`, else the champion as the request starts); 409 when it is not, when
    there is no previous champion, or while a promotion or another rollback of the model is under way."""
    expected = body.expected_champion if body else None
    if expected and expected_champion and expected != expected_champion:
        # each is valid alone (the schema cannot relate them): a conflict, not a malformed request
        raise HTTPException(409, "expected_champion differs between the body and the query; send one")
    result = await _off_loop(lambda rt: _rollback(rt, expected or expected_champion), runtime)
    await runtime.holder.refresh()  # this process serves the restored champion at once
    return result
