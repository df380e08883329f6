"""The loop-wide sweeper: what is due expires once, in order of its tick; a discarded entry never
does; an earlier entry re-arms the one timer."""

import asyncio

import pytest

from foretell.service.sweeper import Sweeper

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_entries_expire_once_in_order_and_a_discarded_one_never() -> None:
    sweeper = Sweeper(tick_s=0.01)
    expired: list[str] = []
    done = asyncio.get_running_loop().create_future()

    def expire(name: str) -> None:
        expired.append(name)
        if name == "last":
            done.set_result(None)

    sweeper.add("last", expire, 0.06)
    sweeper.add("second", expire, 0.03)
    tick = sweeper.add("discarded", expire, 0.02)
    sweeper.add("first", expire, 0.0)  # earlier than the armed timer: re-armed
    sweeper.discard(tick, "discarded")
    await asyncio.wait_for(done, timeout=10)
    assert expired == ["first", "second", "last"]
    assert len(sweeper) == 0


async def test_an_entry_expires_no_sooner_than_its_delay() -> None:
    sweeper = Sweeper(tick_s=0.02)
    loop = asyncio.get_running_loop()
    expired = loop.create_future()
    started = loop.time()
    sweeper.add(expired, lambda f: f.set_result(loop.time()), 0.05)
    assert await asyncio.wait_for(expired, timeout=10) - started >= 0.05 - 0.002


async def test_a_failing_entry_does_not_strand_the_others() -> None:
    sweeper = Sweeper(tick_s=0.01)
    done = asyncio.get_running_loop().create_future()

    def fail(_: object) -> None:
        raise RuntimeError("boom")

    sweeper.add("bad", fail, 0.0)
    sweeper.add(done, lambda f: f.set_result(None), 0.0)
    await asyncio.wait_for(done, timeout=10)
