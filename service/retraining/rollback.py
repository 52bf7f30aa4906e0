"""A person moves the champion back to `previous_champion`: compare-and-set under the champion lease.

The rollback states the champion it expects (given by the caller, else the one read as it starts) and is
refused (`retrain.errors.ChampionChanged`) when MLflow says otherwise; it holds the model's champion
lease, so it never interleaves with a promotion or another rollback, and it waits while a retrain job is
`promoting` (`ChampionBusy`). Two simultaneous rollbacks: one moves the aliases and records its one
`model.rolled_back`, the other is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session

from service.alerts.outbox import emit
from service.config import Settings
from service.monitor import automation
from service.retraining import queue
from service.retraining.champion_lease import ChampionBusy, champion_lease

if TYPE_CHECKING:
    from retrain.registry import Registry

#: how long a rollback waits for the champion lease (another rollback's section takes milliseconds)
LEASE_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class RolledBack:
    champion: str
    previous_champion: str | None


def rollback(
    engine: sa.Engine, registry: Registry, settings: Settings, *, expected_champion: str | None = None
) -> RolledBack:
    """Restore the previous champion and record `model.rolled_back`, if the champion is
    `expected_champion` (default: the champion when this call starts).

    Raises `retrain.errors.NoPreviousChampion` (nothing to go back to), `retrain.errors.ChampionChanged`
    (the champion is not the expected one) or `ChampionBusy` (a promotion or rollback is under way).
    """
    from retrain.registry import PREVIOUS_CHAMPION

    name = settings.model_name
    if expected_champion is None:
        before = registry.champion(name)
        expected_champion = before.version if before else None
    with champion_lease(engine, name, seconds=settings.lease_seconds, wait=LEASE_WAIT_SECONDS) as held:
        if not held:
            raise ChampionBusy(f"another promotion or rollback of {name!r} is in progress; retry shortly")
        with Session(engine) as session:
            promoting = queue.promoting_job(session, name)
        if promoting is not None:
            raise ChampionBusy(
                f"retrain job {promoting.id} is promoting version {promoting.result_version} of {name!r}; "
                f"retry once it has ended (a stopped worker's job is settled within "
                f"{settings.retrain_stale_minutes:g} minutes)"
            )
        restored = registry.rollback(name, expected_champion=expected_champion)
        with Session(engine) as session, session.begin():
            emit(
                session,
                type="model.rolled_back",
                model_name=name,
                model_version=restored.version,
                summary=f"champion rolled back from version {expected_champion or '?'} to {restored.version}",
                data={"from_version": expected_champion, "to_version": restored.version},
                links={"models": f"{settings.public_url}/v1/models"},
            )
            # the person's choice sticks: the loop does not promote over it until resumed
            automation.set_state(
                session, name, "paused", by=automation.ROLLBACK,
                reason=f"rolled back from version {expected_champion or '?'} to {restored.version}",
            )  # fmt: skip
    previous = registry.get_alias(name, PREVIOUS_CHAMPION)
    return RolledBack(restored.version, previous.version if previous else None)
