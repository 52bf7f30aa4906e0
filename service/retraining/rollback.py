"""A person moves the champion back to `previous_champion`: the registry change, then its event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session

from service.alerts.outbox import emit
from service.config import Settings

if TYPE_CHECKING:
    from retrain.registry import Registry


@dataclass(frozen=True)
class RolledBack:
    champion: str
    previous_champion: str | None


def rollback(engine: sa.Engine, registry: Registry, settings: Settings) -> RolledBack:
    """Restore the previous champion and record `model.rolled_back`; raises
    `retrain.errors.NoPreviousChampion` when there is nothing to go back to."""
    name = settings.model_name
    before = registry.champion(name)
    restored = registry.rollback(name)
    with Session(engine) as session, session.begin():
        emit(
            session,
            type="model.rolled_back",
            model_name=name,
            model_version=restored.version,
            summary=f"champion rolled back from version {before.version if before else '?'} "
            f"to {restored.version}",
            data={"from_version": before.version if before else None, "to_version": restored.version},
            links={"models": f"{settings.public_url}/v1/models"},
        )
    previous = registry.get_alias(name, "previous_champion")
    return RolledBack(restored.version, previous.version if previous else None)
