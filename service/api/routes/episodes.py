"""Breach episodes of the served model, open and closed."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlmodel import col, func, select

from service.api.deps import RuntimeDep, SessionDep
from service.api.schemas.drift import EpisodePage, EpisodePublic, RunKind
from service.db.tables import Episode

router = APIRouter(prefix="/v1", tags=["drift"])


@router.get("/episodes", response_model=EpisodePage)
def list_episodes(
    session: SessionDep,
    runtime: RuntimeDep,
    status: Literal["open", "closed"] | None = None,
    kind: RunKind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> EpisodePage:
    """Newest first."""
    stmt = select(Episode).where(Episode.model_name == runtime.settings.model_name)
    if status is not None:
        stmt = stmt.where(Episode.status == status)
    if kind is not None:
        stmt = stmt.where(Episode.kind == kind)
    total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(stmt.order_by(col(Episode.id).desc()).limit(limit).offset(offset)).all()
    return EpisodePage(total=total, limit=limit, offset=offset, items=[EpisodePublic.of(r) for r in rows])
