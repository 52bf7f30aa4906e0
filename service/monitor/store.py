"""Persist a run with its per-feature results and its episode transition in one transaction.

`drift_runs.window_key` is unique: a second attempt at the same window (another scheduler, a retry)
loses at commit and gets the stored run back, so every window is stored once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from service import episodes
from service.config import Settings
from service.models import DriftRun, FeatureResult

log = logging.getLogger("driftloop.monitor")


@dataclass
class Outcome:
    """A computed run before it is stored."""

    run: DriftRun
    features: list[FeatureResult] = field(default_factory=list)
    headline: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def find_run(engine: sa.Engine, key: str) -> DriftRun | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(select(DriftRun).where(DriftRun.window_key == key)).first()


def save(engine: sa.Engine, settings: Settings, outcome: Outcome) -> tuple[DriftRun, bool]:
    """Store the run (and its episode transition); returns (run, created)."""
    transition = episodes.Transition("none", None)
    with Session(engine, expire_on_commit=False) as session:
        run = outcome.run
        session.add(run)
        try:
            session.flush()
            assert run.id is not None
            for result in outcome.features:
                result.run_id = run.id
                session.add(result)
            transition = episodes.evaluate(
                session, run, settings, headline=outcome.headline, details=outcome.details
            )
            session.commit()
        except sa.exc.IntegrityError:
            session.rollback()
            existing = find_run(engine, run.window_key)
            if existing is None:
                raise
            log.info("window %s was already checked (run %s)", run.window_key, existing.id)
            return existing, False
    episodes.run_hooks(transition)
    return run, True
