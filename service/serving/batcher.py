"""Micro-batching: concurrent requests are stacked into one `predict` call on one model version
(scikit-learn's per-call overhead dwarfs the per-row cost)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from service.serving.coalesce import Coalescer
from service.serving.holder import BatchOutput, ModelHolder, ModelUnavailable, PredictionFailed, predict_rows


class MicroBatcher:
    """Stacks concurrent requests into one `predict` call on one model version."""

    def __init__(self, holder: ModelHolder, *, max_rows: int, wait_ms: float) -> None:
        self._holder = holder
        self._queue: Coalescer[tuple[list[dict[str, Any]], asyncio.Future[BatchOutput]]] = Coalescer(
            max_rows=max_rows, wait_ms=wait_ms
        )
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
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
        try:
            out = await asyncio.to_thread(predict_rows, model, rows)
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
