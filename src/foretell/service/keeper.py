"""LeaseKeeper: renews this process's claims on the predictions it runs, and takes over work whose
lease expired (a process that stopped or died), on two timers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Collection

from foretell.store.leases import Leases

log = logging.getLogger(__name__)

# The pause between looks for expired work varies by this much either way, so that processes
# started together do not all look at once.
JITTER = 0.25


class LeaseKeeper:
    """Every `renew_every_s`, one renewal of everything `held()` names; every `take_every_s`
    (jittered), `take()`: what it returns is how many predictions it took over."""

    def __init__(
        self,
        leases: Leases,
        held: Callable[[], Collection[str]],
        take: Callable[[], Awaitable[int]],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._leases = leases
        self._held = held
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
        return now + self._leases.lease.take_every_s * self._rng.uniform(1 - JITTER, 1 + JITTER)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        renew_every_s = self._leases.lease.renew_every_s
        next_renew = loop.time() + renew_every_s
        next_take = self._next_take(loop.time())
        while True:
            await asyncio.sleep(max(0.0, min(next_renew, next_take) - loop.time()))
            now = loop.time()
            if now >= next_renew:
                next_renew = now + renew_every_s
                await self._renew()
            if now >= next_take:
                next_take = self._next_take(now)
                try:
                    await self._take()
                except Exception as exc:  # the database is away: the next look tries again
                    log.warning("looking for predictions whose lease expired failed: %r", exc)

    async def _renew(self) -> None:
        held = self._held()
        try:
            await self._leases.renew(held)
        except Exception as exc:
            # Kept trying every tick; past a lease without one, other processes may take this
            # one's work, and its late writes of it are then dropped (store.leases).
            log.warning("renewing the leases of %d predictions failed: %r", len(held), exc)
