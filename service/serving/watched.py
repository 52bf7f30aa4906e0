"""The models watched at run time, stored in `watched_models` (the admin API writes, every process reads).

The configured list (DRIFTLOOP_MODEL_NAME, DRIFTLOOP_MODELS, the models file) is static; the table adds
models on top of it. `desired` is the one rule that merges the two, for the API processes and the
scheduler alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.db.model_tables import WatchedModel
from service.db.tables import utcnow


def watched_names(engine: sa.Engine) -> list[str]:
    """Every model added at run time, oldest first (one short read of its own)."""
    with Session(engine) as session:
        return list_watched(session)


def list_watched(session: Session) -> list[str]:
    rows = session.exec(select(WatchedModel).order_by(col(WatchedModel.added_at), col(WatchedModel.name)))
    return [row.name for row in rows.all()]


def desired(static: Sequence[str], watched: Sequence[str]) -> tuple[str, ...]:
    """The models a process serves: the configured ones first, in their order, then the watched ones."""
    return tuple(dict.fromkeys([*static, *watched]))


def add_watch(session: Session, name: str) -> bool:
    """Add `name` (flush only); False when it is watched already. Two processes adding the same name at
    once collide on the primary key at commit: the caller treats that as 'already watched'."""
    if session.get(WatchedModel, name) is not None:
        return False
    session.add(WatchedModel(name=name, added_at=utcnow()))
    session.flush()
    return True


def remove_watch(session: Session, name: str) -> bool:
    """Remove `name` (flush only); False when it was not watched at run time."""
    row = session.get(WatchedModel, name)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True
