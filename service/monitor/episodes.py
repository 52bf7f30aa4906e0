"""Breach episodes: alerts and retrains fire when a breach starts and ends, never once per check.

Per (model, kind) an episode *opens* at a breaching scheduled run when at least K of the last M decisive
scheduled runs (status drift / no_drift; insufficient_data and no_reference say nothing) breach, and
*closes* when none of the last M do (hysteresis: a single clean window does not end it). The episode row and
its event are written in the transaction of the run that caused them, and the scheduler's lease serializes
runs of one model, so each transition happens exactly once; a partial unique index (`uq_episodes_one_open`)
refuses a second open episode of one model and kind even if that serialization ever failed.

A *decisive* run (a performance window whose evidence alone settles it: p < 1e-6 and at least three times
the minimum effect) opens the episode on that window without waiting for K of M.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from service.alerts import outbox as events
from service.config import Settings
from service.db.tables import DriftRun, Episode

log = logging.getLogger("driftloop.episodes")

DECISIVE = ("drift", "no_drift")
EVENT_TYPES = {
    "drift": ("drift.detected", "drift.resolved"),
    "performance": ("performance.degraded", "performance.recovered"),
    # label-free estimates (service/monitor/estimated.py): an early warning, labels stay the judge
    "estimated_performance": ("performance.estimated_degraded", "performance.estimated_recovered"),
}

#: Called after the commit that opened / closed an episode (the retrain trigger registers here).
#: A failing hook is logged and never undoes the episode.


@dataclass(frozen=True)
class Transition:
    action: str  # opened | closed | extended | none
    episode: Episode | None


def links(settings: Settings, run_id: int) -> dict[str, str]:
    base = settings.public_url.rstrip("/")
    return {
        "run": f"{base}/v1/drift/runs/{run_id}",
        "report": f"{base}/v1/drift/runs/{run_id}/report.html",
        "dashboard": f"{base}/",
    }


def recent_runs(session: Session, model_name: str, kind: str, m: int) -> list[DriftRun]:
    stmt = (
        select(DriftRun)
        .where(
            DriftRun.model_name == model_name,
            DriftRun.kind == kind,
            DriftRun.trigger == "schedule",
            col(DriftRun.status).in_(DECISIVE),
        )
        .order_by(col(DriftRun.window_end).desc(), col(DriftRun.id).desc())
        .limit(m)
    )
    return list(session.exec(stmt).all())


def open_episodes(session: Session, model_name: str, kind: str | None = None) -> list[Episode]:
    """The model's open episodes (at most one per kind: a partial unique index holds it), oldest first."""
    stmt = select(Episode).where(Episode.model_name == model_name, Episode.status == "open")
    if kind is not None:
        stmt = stmt.where(Episode.kind == kind)
    return list(session.exec(stmt.order_by(col(Episode.opened_at), col(Episode.id))).all())


def open_episode(session: Session, model_name: str, kind: str) -> Episode | None:
    found = open_episodes(session, model_name, kind)
    return found[-1] if found else None


def evaluate(
    session: Session,
    run: DriftRun,
    settings: Settings,
    *,
    headline: str,
    details: dict[str, Any],
    decisive: bool = False,
) -> Transition:
    """Apply the K-of-M rule after `run` was added (flushed) to `session`; the caller commits."""
    assert run.id is not None
    if run.trigger != "schedule" or run.status not in DECISIVE:
        return Transition("none", None)
    session.flush()
    window = recent_runs(session, run.model_name, run.kind, settings.breach_m)
    breaches = sum(r.is_breach for r in window)
    rule = {"k": settings.breach_k, "m": settings.breach_m, "breaching": breaches, "considered": len(window)}
    current = open_episode(session, run.model_name, run.kind)
    opened_type, closed_type = EVENT_TYPES[run.kind]
    decisive = decisive and run.is_breach
    if current is None and run.is_breach and (decisive or breaches >= settings.breach_k):
        # a decisive window opens on its own: the change is dated by it, not by older weak breaches
        breaching = [run] if decisive else [r for r in window if r.is_breach]
        first = min(breaching, key=lambda r: (r.window_end, r.id or 0))
        assert first.id is not None
        episode = Episode(
            model_name=run.model_name,
            kind=run.kind,
            status="open",
            opened_at=run.finished_at,
            first_run_id=first.id,
            last_run_id=run.id,
        )
        session.add(episode)
        session.flush()
        why = (
            "decisive evidence in one window"
            if decisive and breaches < settings.breach_k
            else (f"{breaches} of the last {len(window)} checks breached")
        )
        summary = f"{headline} ({why})"
        if decisive:
            rule["decisive"] = True
        events.emit(
            session,
            type=opened_type,
            model_name=run.model_name,
            model_version=run.model_version,
            summary=summary,
            data={**details, "episode_id": episode.id, "run_id": run.id, "rule": rule},
            links=links(settings, run.id),
        )
        log.warning("episode %s opened: %s", episode.id, summary)
        return Transition("opened", episode)
    if current is not None and breaches == 0:
        current.status = "closed"
        current.closed_at = run.finished_at
        current.close_run_id = run.id
        session.add(current)
        summary = (
            f"{run.kind} breach on {run.model_name} cleared: none of the last {len(window)} checks breached "
            f"(episode {current.id}, opened {current.opened_at.isoformat()})"
        )
        events.emit(
            session,
            type=closed_type,
            model_name=run.model_name,
            model_version=run.model_version,
            summary=summary,
            data={
                **details,
                "episode_id": current.id,
                "run_id": run.id,
                "opened_at": current.opened_at.isoformat(),
                "first_run_id": current.first_run_id,
                "last_breach_run_id": current.last_run_id,
                "rule": rule,
            },
            links=links(settings, run.id),
        )
        log.info("episode %s closed", current.id)
        return Transition("closed", current)
    if current is not None and run.is_breach:
        current.last_run_id = run.id
        session.add(current)
        return Transition("extended", current)
    return Transition("none", current)
