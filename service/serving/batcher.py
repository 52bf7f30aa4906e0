"""Micro-batching: concurrent requests are stacked into one `predict` call on one model version
(scikit-learn's per-call overhead dwarfs the per-row cost)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from service.serving.coalesce import Coalescer
from service.serving.holder import (
    BatchOutput,
    LoadedModel,
    ModelHolder,
    ModelUnavailable,
    PredictionFailed,
    predict_rows,
)

# A batch runs on the event loop when its model's previous call took at most INLINE_MAX_SECONDS of CPU and
# it has at most INLINE_MAX_ROWS rows: for a small call the hop to a worker thread (executor, wake-ups, GIL
# hand-offs between the two threads) costs more than the call (five models in one process, in-process:
# 388 -> 327 us per request). A slow model or a big batch still runs in a thread: the loop never stalls long.
INLINE_MAX_SECONDS = 0.002
INLINE_MAX_ROWS = 64


def _timed(model: LoadedModel, rows: list[dict[str, Any]]) -> tuple[BatchOutput, float]:
    started = time.thread_time()  # this thread's CPU: waits for the GIL do not count
    out = predict_rows(model, rows)
    return out, time.thread_time() - started


class MicroBatcher:
    """Stacks concurrent requests into one `predict` call on one model version."""

    def __init__(self, holder: ModelHolder, *, max_rows: int, wait_ms: float) -> None:
        self._holder = holder
        self._queue: Coalescer[tuple[list[dict[str, Any]], asyncio.Future[BatchOutput]]] = Coalescer(
            max_rows=max_rows, wait_ms=wait_ms
        )
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._cost: tuple[LoadedModel | None, float] = (None, math.inf)  # the last call's model and CPU s
        self.batch_sizes: Callable[[int], None] = lambda n: None

    async def predict(self, rows: list[dict[str, Any]]) -> BatchOutput:
        if self._stopped:
            raise self._gone()
        future: asyncio.Future[BatchOutput] = asyncio.get_running_loop().create_future()
        await self._queue.put((rows, future))
        return await future

    async def _run(self) -> None:
        while True:
            await self._predict_batch(await self._queue.next_batch())

    async def _predict_batch(
        self, batch: list[tuple[list[dict[str, Any]], asyncio.Future[BatchOutput]]]
    ) -> None:
        try:
            model = self._holder.current
        except ModelUnavailable as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        rows = [row for rows, _ in batch for row in rows]
        measured, cost = self._cost
        inline = measured is model and cost <= INLINE_MAX_SECONDS and len(rows) <= INLINE_MAX_ROWS
        try:
            out, cost = _timed(model, rows) if inline else await asyncio.to_thread(_timed, model, rows)
        except Exception as exc:
            if len(batch) > 1:  # isolate the request that broke the batch; the others still get answers
                for item in batch:
                    await self._predict_batch([item])
                return
            if not batch[0][1].done():
                batch[0][1].set_exception(
                    PredictionFailed(f"the model could not score this input: {exc}"[:1000])
                )
            return
        self._cost = (model, cost)
        self.batch_sizes(len(out.predictions))
        start = 0
        for rows, future in batch:
            end = start + len(rows)
            probs = out.probabilities[start:end] if out.probabilities is not None else None
            if not future.done():
                future.set_result(BatchOutput(model, out.predictions[start:end], probs))
            start = end

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="micro-batcher")

    def _gone(self) -> ModelUnavailable:
        return ModelUnavailable(f"'{self._holder.name}' is no longer served")

    async def stop(self) -> None:
        self._stopped = True
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        # a request still queued (its model was just unwatched) gets an answer, not a hang
        while not self._queue.empty():
            for _, future in await self._queue.next_batch():
                if not future.done():
                    future.set_exception(self._gone())
