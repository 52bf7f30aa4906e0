"""Every served model's own champion holder and micro-batcher (one log writer serves them all).

Each model polls and hot-swaps its own champion and batches its own requests, so a model whose champion
cannot be loaded answers 503 alone while the others serve.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from service.serving.batcher import MicroBatcher
from service.serving.holder import LoadedModel, ModelHolder


class UnknownModel(LookupError):
    """A request named a model this deployment does not serve (the API answers 404 naming the known)."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(f"model {name!r} is not served here; served models: {', '.join(self.known)}")


@dataclass(frozen=True)
class ModelSlot:
    holder: ModelHolder
    batcher: MicroBatcher

    @property
    def name(self) -> str:
        return self.holder.name


def make_slot(
    name: str,
    *,
    resolve: Callable[[str], str | None],
    fetch: Callable[[str, str], LoadedModel],
    poll_seconds: float,
    max_rows: int,
    wait_ms: float,
) -> ModelSlot:
    holder = ModelHolder(name, resolve=resolve, fetch=fetch, poll_seconds=poll_seconds)
    return ModelSlot(holder, MicroBatcher(holder, max_rows=max_rows, wait_ms=wait_ms))


async def start(slots: Iterable[ModelSlot]) -> dict[str, bool]:
    """Load every champion (concurrently: one slow registry answer does not delay the others), then
    start each poller and batcher. Returns, per model, whether its champion is loaded."""
    slots = list(slots)
    await asyncio.gather(*(s.holder.refresh() for s in slots))
    for slot in slots:
        slot.holder.start()
        slot.batcher.start()
    return {s.name: s.holder.loaded for s in slots}


async def stop(slots: Iterable[ModelSlot]) -> None:
    for slot in slots:
        await slot.holder.stop()
        await slot.batcher.stop()
