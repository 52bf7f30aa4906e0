"""When a breach asks for a retrain: open episodes that no job answers yet, within cooldown and budget.

The scheduler polls this (crash-safe: a hook after the episode's commit could be lost), and one job
answers every episode open when it starts. A drift episode waits until `retrain_min_rows` predictions
served since the breach its retrain answers have labels: a challenger fitted only on labels from before the
drift is the champion again, and its retrain would spend the cooldown that the useful one needs. An
estimated-performance episode (labels not yet in) triggers only with `retrain_on_estimated`, and waits for
labels the same way.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.config import Settings
from service.db.tables import DriftRun, Episode, Feedback, Prediction, RetrainJob, utcnow
from service.monitor import automation
from service.monitor.episodes import open_episodes
from service.retraining.queue import ACTIVE, enqueue, lock_model

log = logging.getLogger("driftloop.jobs")
ESTIMATED = "estimated_performance"


def automatic_allowed(session: Session, *, model_name: str, settings: Settings) -> str | None:
    """Why an automatic retrain may not start now (paused after a rollback, cooldown, daily budget), or
    None if it may."""
    paused = automation.blocked(session, model_name, settings)
    if paused:
        return paused
    now = utcnow()
    automatic = select(RetrainJob).where(RetrainJob.model_name == model_name, RetrainJob.trigger != "manual")
    last = session.exec(automatic.order_by(col(RetrainJob.created_at).desc())).first()
    if last is not None and now - last.created_at < timedelta(seconds=settings.retrain_cooldown_seconds):
        return f"cooldown: last automatic retrain at {last.created_at.isoformat()}"
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = session.exec(automatic.where(col(RetrainJob.created_at) >= midnight)).all()
    if len(today) >= settings.retrain_daily_budget:
        return f"daily budget of {settings.retrain_daily_budget} automatic retrains used"
    return None


def _covered(episode: Episode, last_breach: DriftRun | None, job: RetrainJob | None) -> bool:
    """Whether `job` (the latest one created since the episode opened) answers the episode's breaches.

    A job covers breaches seen before it finished, and breaches of the version it replaced; a breach
    after a rejected or failed job (the champion is still breaking) asks for another retrain.
    """
    if job is None:
        return False
    if job.status in ACTIVE or last_breach is None or job.finished_at is None:
        return True
    if last_breach.finished_at <= job.finished_at:
        return True
    return job.status == "succeeded" and last_breach.model_version == job.champion_version


def unanswered_breach(session: Session, episode: Episode, answered: RetrainJob | None) -> DriftRun | None:
    """The episode's first breaching run that no job has answered yet: its first run, or after a finished
    job (rejected, failed, or replaced while the breach went on) the first breaching run since."""
    if answered is None or answered.finished_at is None:
        return session.get(DriftRun, episode.first_run_id)
    stmt = select(DriftRun).where(
        DriftRun.model_name == episode.model_name,
        DriftRun.kind == episode.kind,
        DriftRun.trigger == "schedule",
        DriftRun.is_breach == True,  # noqa: E712  (SQL, not Python truthiness)
        col(DriftRun.finished_at) > answered.finished_at,
    )
    first = session.exec(stmt.order_by(col(DriftRun.window_start), col(DriftRun.id))).first()
    return first or session.get(DriftRun, episode.last_run_id)


def labels_since(session: Session, model_name: str, run: DriftRun | None, at_most: int) -> int:
    """Labeled predictions of the model served since the start of `run`'s window, counted up to `at_most`.

    A label arrives after its prediction, so the scan starts from the feedback index on `received_at`
    and stays small however long the prediction log is; the cap bounds it further."""
    if run is None:
        return 0
    rows = (
        select(Feedback.prediction_id)
        .join(Prediction, col(Prediction.id) == Feedback.prediction_id)
        .where(
            col(Feedback.received_at) >= run.window_start,
            col(Prediction.created_at) >= run.window_start,
            Prediction.model_name == model_name,
        )
        .limit(at_most)
        .subquery()
    )
    return int(session.exec(select(sa.func.count()).select_from(rows)).one())


def waiting_for_labels(
    session: Session, episode: Episode, settings: Settings, answered: RetrainJob | None = None
) -> str | None:
    """Why a drift episode's retrain waits (too few labels of the drifted traffic), or None.

    `answered` is the latest job created since the episode opened; the wait counts labels from the
    first breach it did not answer, so a retrain after a rejected one also learns from new traffic."""
    if episode.kind == "performance":
        return None  # a performance breach is measured on labels: they are there
    breach = unanswered_breach(session, episode, answered)
    have = labels_since(session, episode.model_name, breach, settings.retrain_min_rows)
    if have >= settings.retrain_min_rows:
        return None
    return f"waiting for labels of the drifted traffic ({have} of {settings.retrain_min_rows})"


# (episode, job) pairs whose wait was logged: once each, not at every poll
_logged_waits: set[tuple[int, int | None]] = set()


def trigger_for_open_episodes(engine: sa.Engine, settings: Settings) -> list[RetrainJob]:
    """Queue a retrain for open episodes that no job answers yet, within cooldown and daily budget.

    One job answers every episode open when it starts, so a drift and a performance episode of one
    breach cause one retrain; an episode that keeps breaching after a rejected retrain gets another.
    """
    if not settings.retrain_on_episode:
        return []
    # cooldown, budget and single flight are decided in the transaction that queues the job
    with Session(engine, expire_on_commit=False) as session, session.begin():
        lock_model(session, settings.model_name)
        episodes = open_episodes(session, settings.model_name)
        for episode in episodes:
            if episode.kind == ESTIMATED and not settings.retrain_on_estimated:
                continue  # a label-free estimate is an early warning; retraining on it is opt-in
            job = session.exec(
                select(RetrainJob)
                .where(
                    RetrainJob.model_name == episode.model_name, RetrainJob.created_at >= episode.opened_at
                )
                .order_by(col(RetrainJob.created_at).desc())
            ).first()
            if _covered(episode, session.get(DriftRun, episode.last_run_id), job):
                continue
            waiting = waiting_for_labels(session, episode, settings, job)
            if waiting:
                key = (episode.id or 0, job.id if job is not None else None)
                if key not in _logged_waits:
                    _logged_waits.add(key)
                    log.info("episode %s: retrain %s", episode.id, waiting)
                continue
            blocked = automatic_allowed(session, model_name=settings.model_name, settings=settings)
            if blocked:
                log.info("episode %s: retrain not started (%s)", episode.id, blocked)
                return []
            result = enqueue(
                session,
                model_name=settings.model_name,
                trigger="episode",
                reason=f"{episode.kind} episode {episode.id} breached",
                episode_id=episode.id,
                drift_run_id=episode.last_run_id,
            )
            return [result.job] if result.created else []
    return []
