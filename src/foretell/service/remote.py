"""Predictions that another API process runs: waiting for their end, woken by the store's notices
(store.notify) and re-reading the record each time; and canceling them there, or here once that
process's lease expired."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator

from foretell.domain import Prediction
from foretell.store import PredictionStore
from foretell.store.notify import CANCEL, DONE

Read = Callable[[], Awaitable[Prediction | None]]
# While a cancel waits for the process running the prediction, it asks again this often (a
# notice can be missed) and looks whether that process's lease expired.
ASK_EVERY_S = 1.0


class Watchers:
    """Who waits for which prediction's end; `heard` is the store's DONE subscriber."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}
        self.stopping = False

    def heard(self, prediction_id: str | None) -> None:
        """`prediction_id` ended; None: any may have (notices were missed), so all re-read."""
        if prediction_id is None:
            chosen = [e for events in self._events.values() for e in events]
        else:
            chosen = list(self._events.get(prediction_id, ()))
        for event in chosen:
            event.set()

    @contextlib.contextmanager
    def watching(self, prediction_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever `prediction_id` may have ended; clear it before each read."""
        event = asyncio.Event()
        self._events.setdefault(prediction_id, set()).add(event)
        try:
            yield event
        finally:
            events = self._events[prediction_id]
            events.discard(event)
            if not events:
                del self._events[prediction_id]

    async def wait(self, prediction_id: str, read: Read, wait_s: float) -> Prediction | None:
        """`read()` the record until it ended, or `wait_s` seconds have passed: the last one
        read (None if there is none)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        with self.watching(prediction_id) as changed:
            while True:
                changed.clear()  # before the read: an end heard during it wakes the next wait
                found = await read()
                left_s = deadline - loop.time()
                if found is None or found.status.terminal or left_s <= 0 or self.stopping:
                    return found
                await until(changed, left_s)

    def stop(self) -> None:
        """The server is stopping: every wait answers now, with the record as it stands."""
        self.stopping = True
        self.heard(None)


async def until(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait for `event` up to `timeout_s`; whether it was set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await event.wait()
    return event.is_set()


class Elsewhere:
    """Waits on and cancels predictions whichever process runs them (this one included)."""

    def __init__(
        self,
        store: PredictionStore,
        cancel_taken: Callable[[Prediction], Awaitable[Prediction]],
        *,
        confirm_s: float,
    ) -> None:
        self._store = store
        self._cancel_taken = cancel_taken
        self._confirm_s = confirm_s
        self._watchers = Watchers()

    def listen(self, on_cancel: Callable[[str | None], None]) -> None:
        """Hear ends (for waiters) and cancel requests (`on_cancel`), once the store's listener
        starts."""
        self._store.notices.subscribe(DONE, self._watchers.heard)
        self._store.notices.subscribe(CANCEL, on_cancel)

    async def wait(self, prediction_id: str, read: Read, wait_s: float) -> Prediction | None:
        """The record as `read` gives it, once it ended or after `wait_s`."""
        return await self._watchers.wait(prediction_id, read, wait_s)

    async def pause(self, prediction_id: str, timeout_s: float) -> None:
        """Up to `timeout_s`, less if the end of `prediction_id` is heard or the server stops:
        a stream of a prediction another process runs reads its record again after it."""
        if self._watchers.stopping:
            return
        with self._watchers.watching(prediction_id) as changed:
            await until(changed, timeout_s)

    def stop(self) -> None:
        """The server is stopping: waits and cancels answer now, with the record as it stands
        (a cancel already asked for goes on in the process running it)."""
        self._watchers.stop()

    async def cancel(self, prediction: Prediction) -> Prediction:
        """Cancel an unfinished `prediction` that no task of this process runs: ask whichever
        process runs it and wait for the end it writes; if that process's lease expired (it
        stopped or died), take the prediction and cancel it here. After `confirm_s` without
        either, the record as it then stands."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._confirm_s
        with self._watchers.watching(prediction.id) as changed:
            while True:
                changed.clear()
                found = await self._store.get(prediction.id)
                if found is None or found.status.terminal:
                    return found or prediction
                taken = await self._store.leases.claim(prediction.id)
                if taken is not None:
                    return await self._cancel_taken(taken)
                left_s = deadline - loop.time()
                if left_s <= 0 or self._watchers.stopping:
                    return found
                await self._store.publish(CANCEL, prediction.id)
                await until(changed, min(ASK_EVERY_S, left_s))
