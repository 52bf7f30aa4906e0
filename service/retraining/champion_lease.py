"""One promotion or rollback of a model at a time: a database lease around every move of its aliases.

MLflow's aliases have no compare-and-set, so the read of the champion and the moves that depend on it
must not interleave with another actor's: promotion (the retrain worker), rollback (the API) and recovery
each hold `champion:<model>` while they read and move. The lease never waits by itself
(`service.db.leases`); this waits a bounded time, since the holder's section is short.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from service.db.leases import hold_lease, new_holder

_RETRY_SECONDS = 0.05


def lease_name(model_name: str) -> str:
    return f"champion:{model_name}"


@contextmanager
def champion_lease(engine: sa.Engine, model_name: str, *, seconds: float, wait: float) -> Iterator[bool]:
    """Hold the model's champion lease for the block, trying for up to `wait` seconds; yields whether it
    is held (False: another actor is moving the aliases; the caller refuses, never moves them)."""
    holder = new_holder()
    deadline = time.monotonic() + wait
    while True:
        with hold_lease(engine, lease_name(model_name), holder, seconds) as held:
            if held or time.monotonic() >= deadline:
                yield held
                return
        time.sleep(_RETRY_SECONDS)


class ChampionBusy(RuntimeError):
    """Another promotion or rollback of the model holds its champion lease (or a promotion awaits its
    recorded end); nothing was moved: retry."""
