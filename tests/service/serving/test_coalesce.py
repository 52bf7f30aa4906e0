"""The coalescing queue under the micro-batcher and the log writer."""

from __future__ import annotations

import asyncio

from service.serving.coalesce import Coalescer


def test_takes_everything_waiting_up_to_the_row_budget() -> None:
    async def main() -> list[list[int]]:
        queue: Coalescer[tuple[list[int], str]] = Coalescer(max_rows=5, wait_ms=0)
        for name, rows in [("a", [1, 2]), ("b", [3, 4]), ("c", [5, 6]), ("d", [7])]:
            await queue.put((rows, name))
        first = await queue.next_batch()
        second = await queue.next_batch()
        return [[len(r) for r, _ in first], [len(r) for r, _ in second]]

    # a and b (4 rows) then c crosses the budget of 5: it joins the first group, d starts the next
    assert asyncio.run(main()) == [[2, 2, 2], [1]]


def test_a_lone_item_waits_for_company_but_a_full_one_does_not() -> None:
    async def main() -> tuple[int, int]:
        queue: Coalescer[tuple[list[int], str]] = Coalescer(max_rows=4, wait_ms=50)
        await queue.put(([1], "alone"))

        async def late() -> None:
            await asyncio.sleep(0.01)
            await queue.put(([2], "late"))

        task = asyncio.create_task(late())
        waited = await queue.next_batch()
        await task
        await queue.put(([1, 2, 3, 4], "full"))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        full = await queue.next_batch()
        assert loop.time() - t0 < 0.04  # a full group goes at once
        return len(waited), len(full)

    assert asyncio.run(main()) == (2, 1)
