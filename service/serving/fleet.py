"""Every served model's own champion holder and micro-batcher (one log writer serves them all).

Each model polls and hot-swaps its own champion and batches its own requests, so a model whose champion
cannot be loaded answers 503 alone while the others serve. `reconcile` adds and retires slots when the
watched models change at run time (service/serving/watched.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

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


# How long a retired slot keeps answering the requests already routed to it before its batcher stops.
RETIRE_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Reconciled:
    slots: dict[str, ModelSlot]  # the new mapping, in `names` order
    added: tuple[str, ...] = ()
    retired: tuple[ModelSlot, ...] = field(default=())


async def reconcile(
    current: Mapping[str, ModelSlot], names: Sequence[str], make: Callable[[str], ModelSlot]
) -> Reconciled:
    """The slots for `names`: the current ones kept as they are, new ones made and started (their champion
    loaded, or not: a model without a champion is served as 'not loaded', never a crash), and the ones no
    longer named returned as `retired` for the caller to `retire` after it swapped the mapping in."""
    added = [n for n in names if n not in current]
    fresh = {n: make(n) for n in added}
    if fresh:
        await start(fresh.values())
    slots = {n: current[n] if n in current else fresh[n] for n in names}
    retired = tuple(slot for n, slot in current.items() if n not in slots)
    return Reconciled(slots, tuple(added), retired)


async def retire(slots: Iterable[ModelSlot], grace_seconds: float = RETIRE_GRACE_SECONDS) -> None:
    """Stop slots that no longer receive requests, after the ones in flight had `grace_seconds` to finish
    (a request still queued then gets ModelUnavailable, a 503)."""
    slots = list(slots)
    if slots:
        await asyncio.sleep(grace_seconds)
        await stop(slots)
