"""What every runtime provides: load a version, then predict batches. Knows nothing of HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from foretell.domain import OutputStream
from foretell.manifest import ModelVersion, Signature


class LoadedModel(Protocol):
    """A model ready to predict. Lives inside a worker process."""

    @property
    def signature(self) -> Signature: ...

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One JSON-serializable output per input, in order. Raising fails the whole batch
        (the worker then runs it input by input); an InvalidInput in an input's place refuses
        just that input, as the caller's error; a WithFiles carries an output holding files;
        a Stream is an output that comes item by item while it is computed."""
        ...


@dataclass(frozen=True, slots=True)
class WithFiles:
    """An output holding files a model wrote (`foretell.domain.files.FileData` where it returned
    their paths), in an input's place in `predict`'s answer. The replica marks its outcome, so
    the server stores the files and swaps in their URLs, and never walks an output without one."""

    output: Any


@dataclass(frozen=True, slots=True)
class Stream:
    """An output that comes item by item (a generator `predict`, generated tokens), in an
    input's place in `predict`'s answer. The replica advances the streams of a batch in turn,
    sending each item to its own caller as it comes; the output is their concatenation (TEXT)
    or their list (ITEMS). Raising midway fails that input, keeping what it had sent."""

    items: Iterator[Any] | AsyncIterator[Any]
    mode: OutputStream


class Runtime(Protocol):
    name: str
    # True when predict may run on a thread of the server process: it runs no user code that
    # could crash or print into the server, is thread-safe, and releases the GIL while computing.
    in_process: bool

    def check(self, version: ModelVersion) -> None:
        """Cheap static checks before loading (e.g. refusing raw pickle); raises ManifestError."""
        ...

    def load(self, version: ModelVersion) -> LoadedModel:
        """Load the artifact / run setup; raising marks the deployment failed."""
        ...
