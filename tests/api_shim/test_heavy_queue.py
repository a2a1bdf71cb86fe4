"""Heavy /bestplays turns: FIFO, bounded, held until the work on the pool ends."""

from __future__ import annotations

import asyncio
import threading

import pytest

from api_shim.blocking import BlockingPool
from api_shim.heavy_queue import HeavyQueue, QueueFull


def test_turns_run_one_at_a_time_in_arrival_order() -> None:
    pool = BlockingPool(4)
    queue = HeavyQueue(running=1, waiting=8)
    order: list[int] = []
    running = 0
    most = 0
    lock = threading.Lock()

    def work(number: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            order.append(number)
        threading.Event().wait(0.01)
        with lock:
            running -= 1
        return number

    async def request(number: int) -> int:
        async with queue.turn() as turn:
            return await turn.run(pool, work, number)

    async def main() -> list[int]:
        tasks = []
        for number in range(6):
            tasks.append(asyncio.create_task(request(number)))
            await asyncio.sleep(0)  # each one reaches the line before the next arrives
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(main()) == list(range(6))
    assert order == list(range(6))
    assert most == 1


def test_a_request_past_the_bound_is_refused_and_the_others_all_run() -> None:
    pool = BlockingPool(2)
    queue = HeavyQueue(running=1, waiting=2)
    release = threading.Event()

    async def request() -> str:
        async with queue.turn() as turn:
            return await turn.run(pool, lambda: "done" if release.wait(5) else "stuck")

    async def main() -> list[object]:
        tasks = [asyncio.create_task(request()) for _ in range(4)]
        await asyncio.sleep(0.05)
        assert queue.queued == 2
        release.set()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    outcomes = asyncio.run(main())
    assert outcomes.count("done") == 3
    assert [type(outcome) for outcome in outcomes if outcome != "done"] == [QueueFull]


def test_a_cancelled_request_keeps_its_turn_until_its_work_ends() -> None:
    pool = BlockingPool(2)
    queue = HeavyQueue(running=1, waiting=4)
    release = threading.Event()
    started = threading.Event()
    overlapped = []

    def first_work() -> None:
        started.set()
        release.wait(5)

    def second_work() -> bool:
        overlapped.append(not release.is_set())
        return True

    async def request(work: object) -> object:
        async with queue.turn() as turn:
            return await turn.run(pool, work)  # type: ignore[arg-type]

    async def main() -> object:
        first = asyncio.create_task(request(first_work))
        while not started.is_set():
            await asyncio.sleep(0.001)
        second = asyncio.create_task(request(second_work))
        await asyncio.sleep(0.01)
        first.cancel()  # the client went away; its statement still runs
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.sleep(0.02)
        assert not second.done()
        release.set()
        return await second

    assert asyncio.run(main()) is True
    assert overlapped == [False]


def test_a_cancelled_waiter_leaves_the_line() -> None:
    pool = BlockingPool(1)
    queue = HeavyQueue(running=1, waiting=1)
    release = threading.Event()

    async def request() -> bool:
        async with queue.turn() as turn:
            return await turn.run(pool, release.wait, 5)

    async def main() -> list[bool]:
        first = asyncio.create_task(request())
        await asyncio.sleep(0.01)
        waiter = asyncio.create_task(request())
        await asyncio.sleep(0.01)
        assert queue.queued == 1
        waiter.cancel()
        await asyncio.sleep(0)
        assert queue.queued == 0
        # Its place is free again: one more may wait.
        third = asyncio.create_task(request())
        await asyncio.sleep(0.01)
        release.set()
        return [await first, await third]

    assert asyncio.run(main()) == [True, True]
