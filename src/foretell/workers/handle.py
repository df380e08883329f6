"""What the scheduler needs from a replica, whichever kind runs it (thread, process, Ray actor)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from foretell.manifest import ModelVersion, Signature
from foretell.workers.protocol import Chunk, Outcome


class ReplicaHandle(Protocol):
    """One copy of a model version that runs one batch at a time."""

    version: ModelVersion
    # Seconds the last start() spent loading the model; the first batch after it reports this.
    setup_time: float
    # Called when the replica is found dead outside a batch (a process killed while idle).
    on_exit: Callable[[], None]

    @property
    def alive(self) -> bool: ...

    async def start(self) -> Signature:
        """Load the model (again, after a crash); raises ModelLoadFailed with the reason."""
        ...

    async def predict(
        self, inputs: Sequence[dict[str, Any]], on_chunk: Callable[[Chunk], None] | None = None
    ) -> list[Outcome]:
        """Run one batch; raises WorkerCrashed when the replica died or overran its timeout.
        `on_chunk` gets the batch's Chunks (streamed items, printed lines) as they happen, each
        before the batch's outcomes; a replica that sends none carries it all in them."""
        ...

    def interrupt(self) -> bool:
        """Ask the running batch to stop early; False when this kind of replica cannot."""
        ...

    async def stop(self) -> None: ...
