"""Test doubles of a loaded model, by behaviour, and the version that names one.

`load(version)` picks the double by the version's name, so that the same name works in this
process (the child loop over an in-memory pipe) and in a real replica process (fake_worker.py).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from foretell.domain.files import FileData
from foretell.errors import InvalidInput, ModelLoadFailed
from foretell.manifest import Manifest, ModelVersion, Signature, Timeouts

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


MODELS = {
    "echo": Echo,
    "raises-on-bad": RaisesOnBad,
    "miscounts": Miscounts,
    "refuses": Refuses,
    "sleeps": Sleeps,
    "exits-in-predict": ExitsInPredict,
    "measures": Measures,
    "makes": Makes,
}


def load(version: ModelVersion) -> Echo:
    """The double named by `version`; "raises-in-setup" fails as a runtime reports a model's
    setup() raising, "exits-in-setup" ends the process with code 4."""
    if version.name == "raises-in-setup":
        raise ModelLoadFailed(str(version.ref), "RuntimeError: no GPU", "Traceback (fake)\n")
    if version.name == "exits-in-setup":
        os._exit(4)
    return MODELS[version.name]()
