"""A person moves the champion back to `previous_champion`: a recorded intent, compare-and-set, one event.

The rollback states the champion it expects (given by the caller, else the one read as it starts) and is
refused (`retrain.errors.ChampionChanged`) when MLflow says otherwise; it holds the model's champion
lease, so it never interleaves with a promotion or another rollback, and it waits while a retrain job is
`promoting` (`ChampionBusy`). Two simultaneous rollbacks: one moves the aliases and records its one
`model.rolled_back`, the other is refused.

Under the lease:
1. the intent (`champion_rollbacks` row, `moving`: from E, the champion, to P, `previous_champion`) is
   committed before any alias moves;
2. `champion` := P, then `previous_champion` := E (MLflow; `Registry.rollback`);
3. the end commits `rolled_back` (compare-and-set on `moving`) with `model.rolled_back` and the pause.
A `moving` row found by the next holder of the lease (this module before a rollback, recovery before
a retrain trigger) belongs to a process that died: :func:`settle_rollbacks` finishes it when `champion`
is P (putting `previous_champion` back to E if the crash fell between the moves) or marks it `undone`
when the champion never moved. Either way the row ends once, so `model.rolled_back` is sent once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.alerts.outbox import emit
from service.config import Settings
from service.db.rollback_tables import ChampionRollback
from service.db.tables import utcnow
from service.monitor import automation
from service.retraining import queue
from service.retraining.champion_lease import ChampionBusy, champion_lease

if TYPE_CHECKING:
    from retrain.registry import Registry

log = logging.getLogger("driftloop.jobs")

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
        settle_rollbacks(engine, registry, settings, name)  # one whose process died, before ours
        with Session(engine) as session:
            promoting = queue.promoting_job(session, name)
        if promoting is not None:
            raise ChampionBusy(
                f"retrain job {promoting.id} is promoting version {promoting.result_version} of {name!r}; "
                f"retry once it has ended (a stopped worker's job is settled within "
                f"{settings.retrain_stale_minutes:g} minutes)"
            )
        previous = registry.get_alias(name, PREVIOUS_CHAMPION)
        current = registry.champion(name)
        found = current.version if current else None
        if previous is None or found != expected_champion or found == previous.version:
            registry.rollback(name, expected_champion=expected_champion)  # refuses: nothing recorded
            raise AssertionError("Registry.rollback accepted a rollback it must refuse")
        intent = _record_intent(engine, name, from_version=found, to_version=previous.version)
        restored = registry.rollback(name, expected_champion=expected_champion)
        _finish(engine, settings, intent, to_version=restored.version, note="")
    after = registry.get_alias(name, PREVIOUS_CHAMPION)
    return RolledBack(restored.version, after.version if after else None)


def _record_intent(engine: sa.Engine, name: str, *, from_version: str | None, to_version: str) -> int:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = ChampionRollback(model_name=name, from_version=from_version, to_version=to_version,
                               state="moving", requested_at=utcnow())  # fmt: skip
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def _end(session: Session, intent: int, state: str, note: str) -> bool:
    """Compare-and-set `moving` -> `state`; False when the intent had ended already."""
    t = ChampionRollback.__table__  # type: ignore[attr-defined]
    stmt = (
        sa.update(t)
        .where(t.c.id == intent, t.c.state == "moving")
        .values(state=state, note=note[:2000], finished_at=utcnow())
    )
    return bool(session.connection().execute(stmt).rowcount)


def _finish(engine: sa.Engine, settings: Settings, intent: int, *, to_version: str, note: str) -> bool:
    """Step 3: `rolled_back` with its one `model.rolled_back` and the pause, in one transaction."""
    with Session(engine) as session, session.begin():
        row = session.get(ChampionRollback, intent)
        assert row is not None
        if not _end(session, intent, "rolled_back", note):
            return False
        name, source = row.model_name, row.from_version
        text = f"champion rolled back from version {source or '?'} to {to_version}"
        data = {"from_version": source, "to_version": to_version}
        if note:
            data["recovered"] = note
        emit(session, type="model.rolled_back", model_name=name, model_version=to_version,
             summary=text + (f" ({note})" if note else ""), data=data,
             links={"models": f"{settings.public_url}/v1/models"})  # fmt: skip
        # the person's choice sticks: the loop does not promote over it until resumed
        automation.set_state(session, name, "paused", by=automation.ROLLBACK, reason=text)
    return True


def pending_rollbacks(engine: sa.Engine, model_name: str | None = None) -> list[ChampionRollback]:
    with Session(engine, expire_on_commit=False) as session:
        stmt = select(ChampionRollback).where(ChampionRollback.state == "moving")
        if model_name is not None:
            stmt = stmt.where(ChampionRollback.model_name == model_name)
        return list(session.exec(stmt.order_by(col(ChampionRollback.id))).all())


def settle_rollbacks(engine: sa.Engine, registry: Registry, settings: Settings, model_name: str) -> int:
    """End the model's `moving` rollbacks by what MLflow's aliases say (module docstring); the caller
    holds the model's champion lease, so none of them is live. Returns how many were ended."""
    from retrain.registry import PREVIOUS_CHAMPION

    ended = 0
    for intent in pending_rollbacks(engine, model_name):
        assert intent.id is not None
        champion = registry.champion(model_name)
        found = champion.version if champion else None
        cause = "its process stopped mid-way; recovery read the aliases"
        if found == intent.to_version and found != intent.from_version:
            previous = registry.get_alias(model_name, PREVIOUS_CHAMPION)
            source = intent.from_version
            if source is not None and (previous is None or previous.version != source):
                registry.set_alias(model_name, PREVIOUS_CHAMPION, source)  # the second move
            done = _finish(engine, settings, intent.id, to_version=found, note=f"finished: {cause}")
        else:
            text = "nothing moved" if found == intent.from_version else f"the champion is version {found}"
            with Session(engine) as session, session.begin():
                done = _end(session, intent.id, "undone", f"{text}: {cause}")
        if done:
            log.warning("rollback %s of %s settled by recovery (champion %s)", intent.id, model_name, found)
            ended += 1
    return ended


def recover_rollbacks(
    engine: sa.Engine, registry: Registry, settings: Settings, model_name: str | None = None
) -> int:
    """Settle the rollbacks left `moving` (of `model_name`, default every model's), each under its
    champion lease (taken without waiting long: a model whose lease is held is left for the next run)."""
    ended = 0
    for name in sorted({r.model_name for r in pending_rollbacks(engine, model_name)}):
        with champion_lease(engine, name, seconds=settings.lease_seconds, wait=0.5) as held:
            if held:
                ended += settle_rollbacks(engine, registry, settings, name)
    return ended
