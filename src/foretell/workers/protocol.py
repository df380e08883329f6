"""The closed set of messages between a replica process and its parent, tagged by batch id.

Model failures cross the boundary as data (`Outcome.error`), never as pickled exceptions, so a
user's exception class that cannot be unpickled in the parent can never break the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from foretell.manifest import ModelVersion, Signature


@dataclass(frozen=True, slots=True)
class Setup:
    version: ModelVersion


@dataclass(frozen=True, slots=True)
class Predict:
    batch_id: int
    inputs: list[dict[str, Any]]


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
    server to store and replace by URLs: set by the replica, so no other output is walked."""

    output: Any = None
    error: str | None = None
    refused: list[dict[str, Any]] | None = None
    logs: str = ""
    execution_time: float = 0.0
    files: bool = False

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
        )


@dataclass(frozen=True, slots=True)
class Done:
    batch_id: int
    outcomes: list[Outcome]


ToChild = Setup | Predict | Shutdown
ToParent = Ready | SetupFailed | Done
