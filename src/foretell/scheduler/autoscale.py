"""When a deployment runs one replica more or one fewer: a pure rule over what its queue shows.

Between the range's `min` and `max`: one starts when nothing runs and work waits, or when the
oldest waiting job has waited `target_wait_s` while every replica is busy; one that has been
idle `idle_s` stops (none while work waits, which an idle replica is about to take). Up to `min`
start together; beyond it, one start at a time: a replica takes seconds to load, and the queue
it was started for is judged again once it serves. A replica beyond `max` (the range was
lowered) stops as soon as it is idle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from foretell.manifest import ReplicaRange

NEVER = float("inf")


@dataclass(frozen=True, slots=True)
class Seen:
    """What the dispatcher sees now. `idle_since` has one entry per replica serving: when it
    last became free, or None while it runs a batch (or is being restarted)."""

    idle_since: Sequence[float | None]
    starting: int = 0  # replicas being started
    queued: int = 0
    oldest_queued_at: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Start one replica, or stop the replica at index `stop` of `Seen.idle_since`, or neither;
    and in `recheck_s` seconds the answer may change with nothing else happening."""

    start: bool = False
    stop: int | None = None
    recheck_s: float = NEVER


def decide(replicas: ReplicaRange, seen: Seen, now: float) -> Decision:
    """What to do now, given the range and what the dispatcher sees at clock time `now`."""
    running = len(seen.idle_since)
    if running + seen.starting < replicas.min:
        return Decision(start=True)
    if seen.starting:
        return Decision()  # the start's end is the next cue
    grow = _grow(replicas, seen, running, now)
    if grow.start:
        return grow
    shrink = _shrink(replicas, seen, running, now)
    return Decision(stop=shrink.stop, recheck_s=min(grow.recheck_s, shrink.recheck_s))


def _grow(replicas: ReplicaRange, seen: Seen, running: int, now: float) -> Decision:
    if seen.queued and running == 0:
        return Decision(start=True)
    if not seen.queued or seen.oldest_queued_at is None or running >= replicas.max:
        return Decision()
    if any(since is not None for since in seen.idle_since):
        # A free replica takes what waits now (or when the batch window closes): the wait was
        # for a replica being started, or is the window's, not a lack of replicas.
        return Decision()
    waited = now - seen.oldest_queued_at
    if waited >= replicas.target_wait_s:
        return Decision(start=True)
    return Decision(recheck_s=replicas.target_wait_s - waited)


def _shrink(replicas: ReplicaRange, seen: Seen, running: int, now: float) -> Decision:
    idle = [(since, i) for i, since in enumerate(seen.idle_since) if since is not None]
    if not idle:
        return Decision()
    since, longest = min(idle)
    if running > replicas.max:
        return Decision(stop=longest)
    if running <= replicas.min or seen.queued:
        return Decision()
    if now - since >= replicas.idle_s:
        return Decision(stop=longest)
    return Decision(recheck_s=since + replicas.idle_s - now)
