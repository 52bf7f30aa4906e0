"""Run the dispatcher beside the (thread-based) APScheduler: its own event loop in a daemon thread.

A periodic scheduler job would wait for its slowest receiver before the next pass; a long-running
dispatcher does not. The scheduler job only (re)starts it, so a crashed dispatcher comes back.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import sqlalchemy as sa

from service.alerts.worker import Dispatcher
from service.config import Settings

log = logging.getLogger("driftloop.alerts")

JOB_NAME = "webhook-dispatcher"
WATCHDOG_SECONDS = 15.0


class DispatcherThread:
    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name=JOB_NAME, daemon=True)

    def start(self) -> DispatcherThread:
        self._thread.start()
        self._ready.wait(5)
        return self

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Finish attempts in flight (bounded by the webhook timeout) and end the thread."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout if timeout is not None else self.settings.webhook_timeout_seconds + 5)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception:
            log.exception("webhook dispatcher thread stopped")

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        async with Dispatcher(self.engine, self.settings):
            await self._stop.wait()


_threads: dict[int, DispatcherThread] = {}
_lock = threading.Lock()


def ensure_dispatcher(settings: Settings, engine: sa.Engine) -> bool:
    """Scheduler job body: start this process's dispatcher for `engine` unless it runs; True if started."""
    with _lock:
        current = _threads.get(id(engine))
        if current is not None and current.is_alive():
            return False
        if current is not None:
            log.warning("webhook dispatcher thread had stopped; restarting it")
        _threads[id(engine)] = DispatcherThread(engine, settings).start()
        return True


def stop_dispatchers() -> None:
    with _lock:
        threads = list(_threads.values())
        _threads.clear()
    for thread in threads:
        thread.stop()
