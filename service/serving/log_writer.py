"""Group commit: prediction rows from concurrent requests share one transaction.

A request's future resolves only after the transaction holding its rows has committed, so an answered
prediction is always a logged one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from service.serving import store
from service.serving.coalesce import Coalescer

log = logging.getLogger("driftloop.writer")


class LogUnavailable(RuntimeError):
    """The prediction log could not be written (database unreachable)."""


def _commit(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        store.insert_predictions(conn, rows=rows)


class PredictionLogWriter:
    def __init__(
        self, engine: sa.Engine, *, max_rows: int, flush_ms: float, concurrency: int | None = None
    ) -> None:
        self._engine = engine
        self._queue: Coalescer[tuple[list[dict[str, Any]], float, asyncio.Future[None]]] = Coalescer(
            max_rows=max_rows, wait_ms=flush_ms
        )
        self._task: asyncio.Task[None] | None = None
        # SQLite has one writer at a time; PostgreSQL overlaps transactions and flushes their WAL together,
        # so a few commits in flight hide the commit latency (each future still waits for its own commit).
        if concurrency is None:
            concurrency = 1 if engine.dialect.name == "sqlite" else 4
        self._slots = asyncio.Semaphore(concurrency)
        self._flushes: set[asyncio.Task[None]] = set()
        # (model, its rows in one group commit, lag of its oldest row): one call per model per commit
        self.observe: Callable[[str, int, float], None] = lambda model, rows, lag: None
        self._waiting: Counter[str] = Counter()  # per model: requests whose rows are not committed yet

    async def write(self, rows: list[dict[str, Any]]) -> None:
        """Commit the rows (of one model) with those of concurrent requests; returns once committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        model = rows[0]["model_name"] if rows else ""
        self._waiting[model] += 1
        try:
            await self._queue.put((rows, time.perf_counter(), future))
            await future
        finally:
            self._waiting[model] -= 1

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def waiting(self) -> dict[str, int]:
        """Per model, the requests whose rows wait for their group commit (queued or in flight)."""
        return dict(self._waiting)

    async def _run(self) -> None:
        while True:
            await self._slots.acquire()  # while every slot is busy, rows pile up into the next group
            batch = await self._queue.next_batch()
            flush = asyncio.create_task(self._flush(batch))
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[tuple[list[dict[str, Any]], float, asyncio.Future[None]]]) -> None:
        rows = [row for item, _, _ in batch for row in item]
        try:
            await asyncio.to_thread(_commit, self._engine, rows)
        except Exception as exc:
            log.error("prediction log write failed for %d rows: %s", len(rows), exc)
            error = LogUnavailable(f"prediction log database unavailable: {exc.__class__.__name__}")
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        finally:
            self._slots.release()
        done = time.perf_counter()
        per_model: dict[str, list[float]] = {}  # model -> [rows, oldest enqueue time]
        for item, queued, _ in batch:
            if item:
                seen = per_model.setdefault(item[0]["model_name"], [0, queued])
                seen[0] += len(item)
                seen[1] = min(seen[1], queued)
        for model, (n, oldest) in per_model.items():
            self.observe(model, int(n), done - oldest)
        for _, _, future in batch:
            if not future.done():
                future.set_result(None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="prediction-log-writer")

    async def stop(self) -> None:
        # Let queued rows commit before shutdown so no answered request is lost.
        deadline = time.monotonic() + 10
        while not self._queue.empty() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._flushes:  # commits in flight finish; their requests get answers
            await asyncio.wait(set(self._flushes), timeout=max(deadline - time.monotonic(), 0.1))
