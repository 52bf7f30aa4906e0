"""Shared by the micro-batcher and the log writer: take what is already queued, up to a row budget."""

from __future__ import annotations

import asyncio
from collections.abc import Sized
from typing import Any, TypeVar

Item = TypeVar("Item", bound=tuple[Any, ...])


def drain(queue: asyncio.Queue[Item], batch: list[Item], n_rows: int, max_rows: int) -> int:
    """Move queued items (whose first element holds the rows) into `batch` without waiting, until
    `max_rows` rows are gathered; returns the new row count."""
    while n_rows < max_rows and not queue.empty():
        item = queue.get_nowait()
        batch.append(item)
        rows: Sized = item[0]
        n_rows += len(rows)
    return n_rows
