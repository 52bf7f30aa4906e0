"""The coalescing queue shared by the micro-batcher and the log writer: a consumer takes, in one go,
every item already waiting (up to a row budget), and waits a few ms for company only when alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sized
from typing import Any, Generic, TypeVar

Item = TypeVar("Item", bound=tuple[Any, ...])


class Coalescer(Generic[Item]):
    """A queue of items whose first element holds the rows; `next_batch` returns the next group."""

    def __init__(self, *, max_rows: int, wait_ms: float) -> None:
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._max_rows = max_rows
        self._wait = wait_ms / 1000.0

    async def put(self, item: Item) -> None:
        await self._queue.put(item)

    def qsize(self) -> int:
        return self._queue.qsize()

    def empty(self) -> bool:
        return self._queue.empty()

    async def next_batch(self) -> list[Item]:
        first = await self._queue.get()
        batch = [first]
        n = self._drain(batch, _rows(first))
        if len(batch) == 1 and self._wait > 0 and n < self._max_rows:
            await asyncio.sleep(self._wait)
            self._drain(batch, n)
        return batch

    def _drain(self, batch: list[Item], n_rows: int) -> int:
        while n_rows < self._max_rows and not self._queue.empty():
            item = self._queue.get_nowait()
            batch.append(item)
            n_rows += _rows(item)
        return n_rows


def _rows(item: tuple[Any, ...]) -> int:
    rows: Sized = item[0]
    return len(rows)
