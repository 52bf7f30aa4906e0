"""Reconciling the served models with the watched list: kept slots stay, new ones start, removed ones
retire after in-flight requests had their grace, and a request still queued then gets an answer."""

from __future__ import annotations

import asyncio

import pytest
from sklearn.pipeline import Pipeline

from service.serving import fleet
from service.serving.holder import ModelUnavailable
from tests.support.core import FakeRegistry, sample_records


def _maker(registry: FakeRegistry) -> fleet.ModelSlot:
    return fleet.make_slot(
        registry.name, resolve=registry.resolve, fetch=registry.fetch, poll_seconds=60, max_rows=64,
        wait_ms=1,
    )  # fmt: skip


def test_reconcile_keeps_starts_and_retires(demo_estimator: Pipeline) -> None:
    registries = {n: FakeRegistry(n, {"1": demo_estimator}, "1") for n in ("a", "b", "c")}
    registries["c"].champion = None

    async def scenario() -> None:
        made: list[str] = []

        def make(name: str) -> fleet.ModelSlot:
            made.append(name)
            return _maker(registries[name])

        first = await fleet.reconcile({}, ["a", "b"], make)
        assert list(first.slots) == ["a", "b"] and first.added == ("a", "b") and first.retired == ()
        assert all(s.holder.loaded for s in first.slots.values())
        second = await fleet.reconcile(first.slots, ["a", "c"], make)
        assert made == ["a", "b", "c"]  # a is kept as it is, not rebuilt
        assert second.slots["a"] is first.slots["a"]
        assert second.added == ("c",) and not second.slots["c"].holder.loaded  # no champion: not a crash
        assert [s.name for s in second.retired] == ["b"]

        b = first.slots["b"]
        rows = sample_records(1)
        served = asyncio.create_task(b.batcher.predict(rows))  # in flight when b is retired
        await fleet.retire(second.retired, grace_seconds=0.2)
        assert (await served).predictions  # answered within the grace
        with pytest.raises(ModelUnavailable, match="'b' is no longer served"):
            await asyncio.wait_for(b.batcher.predict(rows), timeout=2)  # after: an answer, not a hang
        await fleet.stop(second.slots.values())

    asyncio.run(scenario())


def test_a_request_still_queued_when_the_batcher_stops_gets_an_answer(demo_estimator: Pipeline) -> None:
    async def scenario() -> None:
        slot = _maker(FakeRegistry("a", {"1": demo_estimator}, "1"))  # batcher not started: it stays queued
        queued = asyncio.create_task(slot.batcher.predict(sample_records(1)))
        await asyncio.sleep(0.05)
        await slot.batcher.stop()
        with pytest.raises(ModelUnavailable, match="no longer served"):
            await asyncio.wait_for(queued, timeout=2)

    asyncio.run(scenario())
