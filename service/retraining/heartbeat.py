"""The live worker renews its job's heartbeat, so recovery tells a dead worker from a slow one.

A thread beats every `interval` seconds while the job runs (training can hold the worker for minutes
between steps); recovery reconciles only jobs whose heartbeat is older than `retrain_stale_minutes`.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa
from sqlmodel import Session

from service.config import Settings
from service.retraining import queue

log = logging.getLogger("driftloop.jobs")

#: the longest gap between two beats; a fifth of the stale limit when that is shorter
MAX_INTERVAL_SECONDS = 30.0


def stale_seconds(settings: Settings) -> float:
    return settings.retrain_stale_minutes * 60.0


def interval_seconds(settings: Settings) -> float:
    return min(MAX_INTERVAL_SECONDS, stale_seconds(settings) / 5.0)


class Heartbeat:
    """Beats for one job from `start()` to `stop()`; `lost` turns True once the job is no longer in
    flight (recovery closed it), and beating stops then."""

    def __init__(self, engine: sa.Engine, job_id: int, interval: float) -> None:
        self._engine = engine
        self._job_id = job_id
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"retrain-heartbeat-{job_id}", daemon=True)
        self.lost = False

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def beat(self) -> bool:
        with Session(self._engine) as session, session.begin():
            alive = queue.beat(session, self._job_id)
        if not alive:
            self.lost = True
        return alive

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if not self.beat():
                    log.warning("retrain job %s is no longer in flight; heartbeat stopped", self._job_id)
                    return
            except Exception as exc:  # a database blip: the next beat retries, recovery allows for several
                log.warning("heartbeat of retrain job %s failed: %s", self._job_id, exc)
