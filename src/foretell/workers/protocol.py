"""The closed set of messages between a replica process and its parent, tagged by batch id.

Model failures cross the boundary as data (`Outcome.error`), never as pickled exceptions, so a
user's exception class that cannot be unpickled in the parent can never break the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from foretell.domain import OutputStream
from foretell.manifest import ModelVersion, Signature
from foretell.workers.logs import LOGS_CAP


@dataclass(frozen=True, slots=True)
class Setup:
    version: ModelVersion
    # Characters of one input's prints the replica keeps or sends; past them it notes the cut.
    logs_cap: int = LOGS_CAP


@dataclass(frozen=True, slots=True)
class Predict:
    batch_id: int
    inputs: list[dict[str, Any]]
    # Send the batch's Chunks as they happen (someone awaits them), else all in its outcomes.
    live: bool = False


@dataclass(frozen=True, slots=True)
class Shutdown:
    pass


@dataclass(frozen=True, slots=True)
class Ready:
    signature: Signature
    setup_time: float


@dataclass(frozen=True, slots=True)
class SetupFailed:
    reason: str
    traceback: str = ""  # the model's own setup() traceback, for the deployment's logs


@dataclass(frozen=True, slots=True)
class Outcome:
    """One input's result: `output` on success, else `error` names what the model raised.

    `refused` holds the errors (pydantic's shape) when the model raised InvalidInput: it judged
    the input itself wrong, e.g. a fill-mask text whose mask a long text's cut removes, which
    is the caller's error rather than the model's.

    `files` is True when `output` holds files the model wrote (`FileData`, plain bytes), for the
    server to store and replace by URLs: set by the replica, so no other output is walked.

    `streamed` is set when the model streamed this input's output (how it grew): `output` is
    still the whole of it, the record's final word; the Chunks before it carried it as it came.
    `logs` holds only what no Chunk carried (all of it, for a replica that sends none)."""

    output: Any = None
    error: str | None = None
    refused: list[dict[str, Any]] | None = None
    logs: str = ""
    execution_time: float = 0.0
    files: bool = False
    streamed: OutputStream | None = None

    def __reduce__(self) -> tuple[type[Outcome], tuple[Any, ...]]:
        # One constructor call to unpickle, where a frozen slots dataclass's own state hooks
        # set each field through Python: 2.5x faster each way, a batch of 64 digits outcomes
        # crossing a replica process 1.1 ms -> 0.4 ms on 2 busy cores.
        return Outcome, (
            self.output,
            self.error,
            self.refused,
            self.logs,
            self.execution_time,
            self.files,
            self.streamed,
        )


@dataclass(frozen=True, slots=True)
class Chunk:
    """Part of one input's outcome while its batch still runs, sent as it happens: output items
    the model yielded (JSON-ready, in order; `mode` says how they add up) and what it printed.

    `index` is the input's place in the batch: each item goes to its own caller only."""

    batch_id: int
    index: int
    items: tuple[Any, ...] = ()
    mode: OutputStream | None = None  # set whenever `items` is not empty
    logs: str = ""


@dataclass(frozen=True, slots=True)
class Done:
    batch_id: int
    outcomes: list[Outcome]


@dataclass(frozen=True, slots=True)
class Large:
    """Sent by a replica process before a message of `nbytes` pickled bytes (LARGE_MESSAGE_BYTES
    or more, e.g. a Done holding a model's files): the parent reads that one off its event loop."""

    nbytes: int


# A message this large is sent, and read by the parent, on a thread: on the event loop, a 50 MB
# file stalled every other request on the server for 90-120 ms each way; now 25-30 ms (pickling
# a batch stays on the loop, and a reply's unpickled copy holds the GIL: bench/large_messages.py).
# Smaller ones, nearly all of them, are sent and read on the loop as before: a hop to a thread
# and back costs more than sending one.
LARGE_MESSAGE_BYTES = 1 << 20

ToChild = Setup | Predict | Shutdown
ToParent = Ready | SetupFailed | Chunk | Done | Large
