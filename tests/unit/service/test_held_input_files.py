"""The cap on input files' bytes held in memory by unfinished predictions: an input that would
pass it waits until others end; one alone runs whatever its size; few are fetched at once."""

from __future__ import annotations

import asyncio

import pytest

from foretell.service.held import HeldInputFiles

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def fetched(n: int) -> int:
    return n


async def test_an_input_past_the_cap_waits_until_held_bytes_are_given_back() -> None:
    held = HeldInputFiles(limit=100)
    assert await held.resolve(lambda: fetched(60), int) == 60
    waiting = asyncio.create_task(held.resolve(lambda: fetched(60), int))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    assert held.held == 60

    held.release(60)

    assert await asyncio.wait_for(waiting, 1) == 60
    assert held.held == 60


async def test_one_input_larger_than_the_cap_runs_alone() -> None:
    held = HeldInputFiles(limit=100)
    assert await held.resolve(lambda: fetched(500), int) == 500
    second = asyncio.create_task(held.resolve(lambda: fetched(1), int))
    await asyncio.sleep(0.01)
    assert not second.done()  # nothing joins it while it is held
    held.release(500)
    assert await asyncio.wait_for(second, 1) == 1


async def test_inputs_within_the_cap_never_wait() -> None:
    held = HeldInputFiles(limit=100)
    sizes = await asyncio.gather(*(held.resolve(lambda: fetched(10), int) for _ in range(10)))
    assert sizes == [10] * 10
    assert held.held == 100


async def test_no_more_than_its_concurrency_are_fetched_at_once() -> None:
    held = HeldInputFiles(limit=10**9, concurrency=2)
    running = peak = 0
    gate = asyncio.Event()

    async def slow() -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return 1

    tasks = [asyncio.create_task(held.resolve(slow, int)) for _ in range(6)]
    await asyncio.sleep(0.01)
    assert running == 2
    gate.set()
    await asyncio.gather(*tasks)
    assert peak == 2


async def test_a_waiter_that_leaves_is_forgotten() -> None:
    held = HeldInputFiles(limit=10)
    await held.resolve(lambda: fetched(10), int)
    waiting = asyncio.create_task(held.resolve(lambda: fetched(5), int))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    held.release(10)
    assert held.held == 0
    assert await held.resolve(lambda: fetched(5), int) == 5
