"""Persist a run with its per-feature results and its episode transition in one transaction.

`drift_runs.window_key` is unique: a second attempt at the same window (another scheduler, a retry)
loses at commit and gets the stored run back, so every window is stored once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from detectors.performance_evidence import Baseline
from service.codec import dumps, loads
from service.config import Settings
from service.db.tables import DriftRun, FeatureResult, utcnow
from service.monitor import episodes, pooling

log = logging.getLogger("driftloop.monitor")


@dataclass
class Outcome:
    """A computed run before it is stored."""

    run: DriftRun
    features: list[FeatureResult] = field(default_factory=list)
    headline: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    #: evidence so strong that this window alone opens the episode (performance runs)
    decisive: bool = False


def find_run(engine: sa.Engine, key: str) -> DriftRun | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(select(DriftRun).where(DriftRun.window_key == key)).first()


def save(engine: sa.Engine, settings: Settings, outcome: Outcome) -> tuple[DriftRun, bool]:
    """Store the run (and its episode transition); returns (run, created)."""
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
                session, run, settings, headline=outcome.headline, details=outcome.details,
                decisive=outcome.decisive,
            )  # fmt: skip
            _pool(run, transition, settings)
            session.commit()
        except sa.exc.IntegrityError:
            session.rollback()
            existing = find_run(engine, run.window_key)
            if existing is None:
                raise
            log.info("window %s was already checked (run %s)", run.window_key, existing.id)
            return existing, False
    return run, True


def _pool(run: DriftRun, transition: episodes.Transition, settings: Settings) -> None:
    """The baseline after a performance check (pooling knows whether an episode is open now)."""
    if run.kind != "performance" or run.trigger != "schedule":
        return
    summary = loads(run.summary)
    state, window = summary.get("baseline_state"), summary.get("window_baseline")
    if state is None or window is None:
        return
    episode = transition.episode
    is_open = episode is not None and episode.status == "open"
    summary["baseline_next"] = pooling.advance(
        state, Baseline.from_dict(window), episode_open=is_open, m=settings.breach_m
    )
    run.summary = dumps(summary)


def finite(value: float | None) -> float | None:
    """A float column's value: NaN and infinities are stored as NULL."""
    return None if value is None or value != value or value in (float("inf"), float("-inf")) else float(value)


def new_run(
    *,
    status: str,
    n_rows: int,
    start: datetime,
    end: datetime,
    summary: dict[str, Any],
    dataset_drift: bool = False,
    drift_share: float = 0.0,
    is_breach: bool = False,
) -> DriftRun:
    now = utcnow()
    return DriftRun(
        window_key="",
        kind="",
        model_name="",
        model_version="",
        window_start=start,
        window_end=end,
        n_rows=n_rows,
        status=status,
        dataset_drift=dataset_drift,
        drift_share=drift_share if drift_share == drift_share else 0.0,
        is_breach=is_breach,
        summary=dumps(summary),
        started_at=now,
        finished_at=now,
    )
