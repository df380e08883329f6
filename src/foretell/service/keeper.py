"""LeaseKeeper: renews this process's claims (on the predictions it runs, the webhook events it
delivers), and takes over work whose lease expired (a process that stopped or died), on two
timers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

from foretell.store.leases import Lease

log = logging.getLogger(__name__)

# The pause between looks for expired work varies by this much either way, so that processes
# started together do not all look at once.
JITTER = 0.25


Work = Callable[[], Awaitable[object]]


class LeaseKeeper:
    """Every `lease.renew_every_s`, each of `renew` (one renewal of all a kind of claim); every
    `lease.take_every_s` (jittered), each of `take`. A failure is logged and tried next time."""

    def __init__(
        self,
        lease: Lease,
        *,
        renew: Sequence[Work],
        take: Sequence[Work],
        rng: random.Random | None = None,
    ) -> None:
        self._lease = lease
        self._renew = renew
        self._take = take
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="foretell-leases")

    async def close(self) -> None:
        """Stop renewing and taking; what this process still holds expires in its time."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _next_take(self, now: float) -> float:
        return now + self._lease.take_every_s * self._rng.uniform(1 - JITTER, 1 + JITTER)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        renew_every_s = self._lease.renew_every_s
        next_renew = loop.time() + renew_every_s
        next_take = self._next_take(loop.time())
        while True:
            await asyncio.sleep(max(0.0, min(next_renew, next_take) - loop.time()))
            now = loop.time()
            if now >= next_renew:
                next_renew = now + renew_every_s
                # Tried every tick; past a lease without one, other processes may take this
                # one's work, and its late writes of it are then dropped (store.leases).
                await _each(self._renew, "renewing this process's leases")
            if now >= next_take:
                next_take = self._next_take(now)
                await _each(self._take, "looking for work whose lease expired")


async def _each(works: Sequence[Work], what: str) -> None:
    for work in works:
        try:
            await work()
        except Exception as exc:  # the database is away: the next tick tries again
            log.warning("%s failed: %r", what, exc)
