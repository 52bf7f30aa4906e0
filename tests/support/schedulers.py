"""Helpers of the scheduler tests: two scheduler "processes" over one store, and a job body that records
whether another one ran beside it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from service import scheduler as sched
from service.config import Settings
from service.db.engine import make_engine


class OverlapProbe:
    """A job body that takes `seconds` and records, at each start, how many bodies run now (itself
    included): only 1s when the schedulers' lease keeps them apart."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls: list[int] = []
        self._active = 0
        self._lock = threading.Lock()

    def __call__(self, _settings: object, _engine: object) -> None:
        with self._lock:
            self._active += 1
            self.calls.append(self._active)
        time.sleep(self.seconds)
        with self._lock:
            self._active -= 1


@contextmanager
def two_schedulers(
    url: str, settings: Settings, jobs: Callable[[sa.Engine], list[sched.JobSpec]]
) -> Iterator[None]:
    """Two "processes" over one store, started: each with its own engine, its own scheduler (own holder
    id) and the jobs `jobs(engine)` builds; shut down, their runs waited out, on exit."""
    schedulers = []
    try:
        for _ in range(2):
            engine = make_engine(url)
            schedulers.append((sched.build_scheduler(settings, engine, jobs(engine)), engine))
        for scheduler, _ in schedulers:
            scheduler.start()
        yield
    finally:
        for scheduler, engine in schedulers:
            if scheduler.running:
                scheduler.shutdown(wait=True)
            engine.dispose()


def wait_until(count: Callable[[], int], at_least: int, timeout: float = 60.0) -> None:
    """Until `count()` reaches `at_least` (or `timeout` s), then a second more: a few more ticks of both
    schedulers, in which a run done twice would show."""
    deadline = time.monotonic() + timeout
    while count() < at_least and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
