"""What a retrain job learns from after a change, which metric it gates on, and the baseline it leaves.

- `change_at`: when the job's episode opened on a change, the first prediction time of the episode's first
  breaching window (a decisive window opens the episode on its own, so it is that window's): the challenger
  trains and is judged on rows predicted from then on (`retrain.post_change`), so the old concept is not
  taught again.
- `gate_metric`: the task's metric (accuracy / rmse) unless `DRIFTLOOP_PERFORMANCE_METRIC` names one,
  which must fit the task.
- `store_baseline`: the promoted challenger's holdout baseline, stored with its reference, is what its
  performance windows are tested against.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session

from service.config import Settings
from service.db.tables import DriftRun, Episode, RetrainJob
from service.monitor.references import get_reference, set_baseline
from service.monitor.tasks import model_task, watched_metric

if TYPE_CHECKING:
    from retrain.loop import RetrainOutcome
    from retrain.registry import Registry

log = logging.getLogger("driftloop.jobs")


def change_at(engine: sa.Engine, job: RetrainJob) -> datetime | None:
    """The first prediction time of the job's episode's first breaching window; None without an episode."""
    if job.episode_id is None:
        return None
    with Session(engine) as session:
        episode = session.get(Episode, job.episode_id)
        first = session.get(DriftRun, episode.first_run_id) if episode is not None else None
        if first is None:
            return None
        predicted = orjson.loads(first.summary).get("predicted_from")
        return datetime.fromisoformat(predicted) if predicted else first.window_start


def gate_metric(engine: sa.Engine, registry: Registry, settings: Settings, name: str, version: str) -> str:
    """The metric of the version's task (stored with its reference, else inferred from the model)."""
    with Session(engine) as session:
        row = get_reference(session, model_name=name, model_version=version)
        task = row.task if row is not None else None
    task = task or model_task(registry, name, version)
    if task is None:  # nothing tells: the setting as given (run_retrain checks it against the model)
        return settings.performance_metric or "accuracy"
    return watched_metric(settings, task)


def job_details(outcome: RetrainOutcome, change: datetime | None) -> dict[str, Any]:
    """What the job record says about the data and the gate, in addition to both scores."""
    paired = outcome.evaluation.paired
    return {
        "paired": asdict(paired) if paired is not None else None,
        "test": paired.test if paired is not None else None,
        "p_val": paired.p_val if paired is not None else None,
        "gate": paired.summary if paired is not None else outcome.reason,
        "post_change": outcome.post_change,
        "data_reason": outcome.data_reason,
        "change_at": change.isoformat() if change is not None else None,
        "baseline": outcome.baseline.to_dict() if outcome.baseline is not None else None,
    }


def store_baseline(engine: sa.Engine, name: str, version: str, outcome: RetrainOutcome) -> None:
    """The promoted version's holdout baseline and its task (a clone of the champion has the champion's)
    on its reference row. Best effort: without them the version's first labeled window becomes its
    baseline and the task is read from the model at its first check."""
    try:
        with Session(engine) as session, session.begin():
            before = get_reference(session, model_name=name, model_version=outcome.champion_version_before)
            row = get_reference(session, model_name=name, model_version=version)
            if row is None:
                log.warning("baseline of %s v%s not stored: no reference row", name, version)
                return
            if row.task is None and before is not None and before.task is not None:
                row.task = before.task
                session.add(row)
            if outcome.baseline is not None:
                set_baseline(session, model_name=name, model_version=version, baseline=outcome.baseline)
    except Exception as exc:
        log.warning("baseline of %s v%s not stored: %s", name, version, exc)
