"""Test doubles of a loaded model, by behaviour, and the version that names one.

`load(version)` picks the double by the version's name, so that the same name works in this
process (the child loop over an in-memory pipe) and in a real replica process (fake_worker.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from foretell.domain import OutputStream
from foretell.domain.files import FileData
from foretell.errors import InvalidInput, ModelLoadFailed
from foretell.manifest import Manifest, ModelVersion, Signature, Timeouts
from foretell.runtimes.base import Stream

SIGNATURE = Signature({"type": "object", "title": "Input"}, {"title": "Output"})


def version(name: str, **timeouts: float) -> ModelVersion:
    """A python-runtime version called acme/`name`:1, with `timeouts` (e.g. predict_s=0.5)."""
    manifest = Manifest.model_construct(runtime="python", timeouts=Timeouts(**timeouts))
    return ModelVersion("acme", name, 1, Path(name), manifest)


class Echo:
    """Answers each input with itself; prints, so that a test can find the logs."""

    signature = SIGNATURE

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        print(f"predicting {len(batch)}")
        return [dict(item) for item in batch]


class RaisesOnBad(Echo):
    """Raises for a batch holding an input {"bad": true}, with an exception class that the
    parent could not unpickle (it is local to a function)."""

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        class Unpicklable(Exception):
            pass

        if any(item.get("bad") for item in batch):
            print("about to fail")
            raise Unpicklable("boom")
        return super().predict(batch)


class Miscounts(Echo):
    """Answers a batch of several inputs with one output too few."""

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        return super().predict(batch)[: max(1, len(batch) - 1)]


class Refuses(Echo):
    """Puts an InvalidInput in the place of an input {"refuse": true}; its ctx holds an
    exception, as pydantic's do, which is not JSON."""

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [
            InvalidInput(
                [{"loc": ("text",), "msg": "no mask left", "ctx": {"error": ValueError("cut")}}]
            )
            if item.get("refuse")
            else dict(item)
            for item in batch
        ]


class Sleeps(Echo):
    """Sleeps `seconds`, the first input's, then answers; first creates the file `started`,
    when the input names one, so that a test knows the model is running."""

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        if started := batch[0].get("started"):
            Path(started).touch()
        time.sleep(float(batch[0].get("seconds", 0)))
        return super().predict(batch)


class ExitsInPredict(Echo):
    """Ends its process with code 3, as a model calling sys.exit or a crash in C would."""

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        sys.stdout.flush()
        os._exit(3)


class Measures(Echo):
    """Answers each input {"file": FileData} with its size: a large batch, a small reply."""

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [{"size": len(item["file"].data)} for item in batch]


class Makes(Echo):
    """Answers each input {"size": n} with a file of n zero bytes: a small batch, a large reply."""

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [FileData("zeros.bin", "application/octet-stream", bytes(i["size"])) for i in batch]


# How long a double waits for a test to open its gate before giving up; the test opens it as
# soon as it has seen what it waits for.
GATE_S = 20.0


def wait_for(path: str) -> None:
    """Until the file `path` exists (a test made it: it saw what came before), or fail."""
    until = time.monotonic() + GATE_S
    while not os.path.exists(path):
        if time.monotonic() > until:
            raise TimeoutError(f"nobody opened {path}")
        time.sleep(0.002)


def _mode(item: Mapping[str, Any]) -> OutputStream:
    return OutputStream.ITEMS if item.get("mode") == "items" else OutputStream.TEXT


class Streams(Echo):
    """Streams each input's "items", printing "sent X" after each; with "raise_after": n, raises
    after n items; with "gate": a path, waits for the file "<gate>-<i>" before item i > 0;
    with "times": n, each item is its value n times over. {"mode": "items"} streams a list,
    else text."""

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [Stream(self._items(item), _mode(item)) for item in batch]

    def _items(self, item: Mapping[str, Any]) -> Iterator[Any]:
        for i, value in enumerate(item["items"]):
            if i == item.get("raise_after"):
                raise ValueError(f"gave up after {i}")
            if i and (gate := item.get("gate")):
                wait_for(f"{gate}-{i}")
            yield value * item["times"] if "times" in item else value
            print(f"sent {value}")


class StreamsAsync(Streams):
    """Streams as its parent does, from an async generator that awaits between items."""

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [Stream(self._async_items(item), _mode(item)) for item in batch]

    async def _async_items(self, item: Mapping[str, Any]) -> AsyncIterator[Any]:
        for value in self._items(item):
            await asyncio.sleep(0)
            yield value


class PrintsLines(Echo):
    """Prints "line i" for each of "lines", then waits for the file "<gate>-<i>" (the test saw
    that line) before the next; answers "done" after a last line with no newline."""

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        item = batch[0]
        for i in range(item["lines"]):
            print(f"line {i}", flush=True)
            wait_for(f"{item['gate']}-{i}")
        print("no newline", end="")
        return ["done"]


class PrintsMuch(Echo):
    """Prints "chars" characters of digits, in lines of 100 (99 and a newline); streams them
    too when {"stream": true}, so that its prints happen while its stream is advanced."""

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        item = batch[0]
        if item.get("stream"):
            return [Stream(self._printing(item["chars"]), OutputStream.ITEMS)]
        for _ in self._printing(item["chars"]):
            pass
        return ["done"]

    def _printing(self, chars: int) -> Iterator[int]:
        for n in range(chars // 100):
            print(str(n % 10) * 99)
            yield n


MODELS = {
    "echo": Echo,
    "raises-on-bad": RaisesOnBad,
    "miscounts": Miscounts,
    "refuses": Refuses,
    "sleeps": Sleeps,
    "exits-in-predict": ExitsInPredict,
    "measures": Measures,
    "makes": Makes,
    "streams": Streams,
    "streams-async": StreamsAsync,
    "prints-lines": PrintsLines,
    "prints-much": PrintsMuch,
}


def load(version: ModelVersion) -> Echo:
    """The double named by `version`; "raises-in-setup" fails as a runtime reports a model's
    setup() raising, "exits-in-setup" ends the process with code 4."""
    if version.name == "raises-in-setup":
        raise ModelLoadFailed(str(version.ref), "RuntimeError: no GPU", "Traceback (fake)\n")
    if version.name == "exits-in-setup":
        os._exit(4)
    return MODELS[version.name]()
