"""The long-running dispatcher: scans the outbox every `webhook_dispatch_interval` seconds.

Each claimed delivery is its own task, so a receiver that hangs until its timeout holds one slot of
`webhook_concurrency` and delays nobody else: the next scan goes on while it waits.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

import httpx
import sqlalchemy as sa

from service.alerts.dispatcher import claim_due, deliver, make_client
from service.config import Settings

log = logging.getLogger("driftloop.alerts")


class Dispatcher:
    """`start()` inside a running event loop, `await stop()` to finish; or `async with Dispatcher(...)`."""

    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._inflight: set[asyncio.Task[str]] = set()
        self.attempts = 0

    def start(self) -> None:
        if self._task is None:
            self._client = make_client()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        """Stop scanning; let attempts in flight finish (each is bounded by its timeout)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=self.settings.webhook_timeout_seconds + 1)
            for task in self._inflight:
                task.cancel()  # its lease expires and another pass retries it
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> Dispatcher:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _run(self) -> None:
        interval = self.settings.webhook_dispatch_interval
        while True:
            try:
                await self._scan()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be down: say so, keep scanning
                log.warning("webhook dispatcher scan failed: %s", exc)
            await asyncio.sleep(interval)

    async def _scan(self) -> None:
        free = self.settings.webhook_concurrency - len(self._inflight)
        if free <= 0:
            return
        claimed = await asyncio.to_thread(claim_due, self.engine, settings=self.settings, limit=free)
        assert self._client is not None
        for item in claimed:
            task = asyncio.create_task(deliver(self._client, self.engine, item, self.settings))
            self._inflight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[str]) -> None:
        self._inflight.discard(task)
        self.attempts += 1
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery task failed: %s", task.exception())
