"""Where the micro-batcher runs a call: small calls of a cheap model on the event loop, the rest in a thread;
a failing request is isolated either way."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from service.serving import batcher as batcher_module
from service.serving.batcher import INLINE_MAX_ROWS, MicroBatcher
from service.serving.holder import BatchOutput, LoadedModel, ModelHolder, PredictionFailed


class _Calls:
    """A stand-in for predict_rows: records the thread of each call; `busy` seconds of CPU per call."""

    def __init__(self, busy: float = 0.0) -> None:
        self.threads: list[int] = []
        self.busy = busy

    def __call__(self, model: LoadedModel, rows: list[dict[str, Any]]) -> BatchOutput:
        self.threads.append(threading.get_ident())
        if any(r.get("bad") for r in rows):
            raise ValueError("cannot score this")
        until = time.thread_time() + self.busy
        while time.thread_time() < until:
            pass
        return BatchOutput(model, [r["x"] for r in rows], None)


def _model(version: str = "1") -> LoadedModel:
    return LoadedModel("m", version, object(), (), None)


def _holder(model: LoadedModel) -> ModelHolder:
    holder = ModelHolder("m", resolve=lambda name: None, fetch=lambda n, v: _model(v), poll_seconds=60)
    holder.set(model)
    return holder


async def _threads_of(calls: _Calls, holder: ModelHolder, batches: list[int]) -> list[bool]:
    """Run one batch of each size in turn; per call, whether it ran on the event loop's thread."""
    batcher = MicroBatcher(holder, max_rows=1000, wait_ms=0)
    batcher.start()
    try:
        for n in batches:
            out = await batcher.predict([{"x": i} for i in range(n)])
            assert out.predictions == list(range(n))
    finally:
        await batcher.stop()
    return [t == threading.get_ident() for t in calls.threads]


def test_a_cheap_model_runs_inline_after_its_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _Calls()
    monkeypatch.setattr(batcher_module, "predict_rows", calls)
    on_loop = asyncio.run(_threads_of(calls, _holder(_model()), [1, 3, 5, INLINE_MAX_ROWS + 1, 2]))
    assert on_loop == [False, True, True, False, True]  # unmeasured, cheap, cheap, too many rows, cheap


def test_a_slow_model_stays_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _Calls(busy=batcher_module.INLINE_MAX_SECONDS * 2)
    monkeypatch.setattr(batcher_module, "predict_rows", calls)
    assert asyncio.run(_threads_of(calls, _holder(_model()), [1, 1, 1])) == [False, False, False]


def test_a_swapped_in_model_is_measured_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _Calls()
    monkeypatch.setattr(batcher_module, "predict_rows", calls)
    holder = _holder(_model("1"))

    async def run() -> None:
        batcher = MicroBatcher(holder, max_rows=1000, wait_ms=0)
        batcher.start()
        try:
            for version in ("1", "1", "2", "2"):
                if holder.current.version != version:
                    holder.set(_model(version))
                assert (await batcher.predict([{"x": 0}])).model.version == version
        finally:
            await batcher.stop()

    asyncio.run(run())
    assert [t == threading.get_ident() for t in calls.threads] == [False, True, False, True]


@pytest.mark.parametrize("warm", [False, True], ids=["in a thread", "inline"])
def test_a_failing_request_is_isolated(monkeypatch: pytest.MonkeyPatch, warm: bool) -> None:
    calls = _Calls()
    monkeypatch.setattr(batcher_module, "predict_rows", calls)

    async def run() -> list[Any]:
        batcher = MicroBatcher(_holder(_model()), max_rows=1000, wait_ms=5)
        batcher.start()
        try:
            if warm:
                await batcher.predict([{"x": -1}])
            requests = [[{"x": 1}], [{"x": 2, "bad": True}], [{"x": 3}, {"x": 4}]]
            return await asyncio.gather(*(batcher.predict(r) for r in requests), return_exceptions=True)
        finally:
            await batcher.stop()

    good, bad, other = asyncio.run(run())
    assert isinstance(good, BatchOutput) and good.predictions == [1]
    assert isinstance(bad, PredictionFailed) and "cannot score this" in str(bad)
    assert isinstance(other, BatchOutput) and other.predictions == [3, 4]
    assert len(calls.threads) == (1 if warm else 0) + 4  # the batch of three, then each alone
