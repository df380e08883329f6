"""The `onnx` runtime: run an ONNX graph with onnxruntime; the schema is read from the graph.

Each graph input and output becomes one property holding a tensor as nested JSON arrays, one level
per dimension. Schemas carry two annotations: `x-dtype` (`float32`, `int64`, `bool`, `string`, …)
and `x-shape` (the graph's dimensions, -1 where a dimension is dynamic).

Options (`options:` in foretell.yaml):
    intra_op_threads: threads one prediction may use (default 1; replicas give parallelism).
    device: cpu (default), cuda or cuda:N: onnxruntime's CUDA provider on GPU N, or a load error
        naming what is missing, never a silent run on the CPU (onnx_device.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from foretell.errors import ManifestError, ModelLoadFailed
from foretell.manifest import ModelVersion, Signature
from foretell.manifest.manifest import MANIFEST_FILE
from foretell.runtimes.onnx_device import device, require_build, require_started

_OPTIONS = ("intra_op_threads", "device")
_MAX_THREADS = 256

# onnxruntime's type string -> (numpy dtype, x-dtype, JSON Schema type)
_TYPES: dict[str, tuple[type[Any], str, str]] = {
    "tensor(float)": (np.float32, "float32", "number"),
    "tensor(double)": (np.float64, "float64", "number"),
    "tensor(float16)": (np.float16, "float16", "number"),
    "tensor(int8)": (np.int8, "int8", "integer"),
    "tensor(int16)": (np.int16, "int16", "integer"),
    "tensor(int32)": (np.int32, "int32", "integer"),
    "tensor(int64)": (np.int64, "int64", "integer"),
    "tensor(uint8)": (np.uint8, "uint8", "integer"),
    "tensor(uint16)": (np.uint16, "uint16", "integer"),
    "tensor(uint32)": (np.uint32, "uint32", "integer"),
    "tensor(uint64)": (np.uint64, "uint64", "integer"),
    "tensor(bool)": (np.bool_, "bool", "boolean"),
    "tensor(string)": (np.object_, "string", "string"),
}


@dataclass(frozen=True, slots=True)
class Tensor:
    """One graph input or output: its name, element type and shape (-1 = dynamic)."""

    name: str
    dtype: type[Any]
    x_dtype: str
    json_type: str
    shape: tuple[int, ...]

    @property
    def batchable(self) -> bool:
        """Whether items can be stacked along the first dimension."""
        return len(self.shape) >= 1 and self.shape[0] == -1

    def schema(self, *, taken: bool = False) -> dict[str, Any]:
        """As JSON Schema; `taken`: an input's, where an empty list cannot be sent (below)."""
        leaf: dict[str, Any] = {"type": self.json_type}
        if self.json_type == "integer" and self.x_dtype not in ("int64", "uint64"):
            info = np.iinfo(self.dtype)
            leaf |= {"minimum": int(info.min), "maximum": int(info.max)}
        node = leaf
        last = len(self.shape) - 1
        for axis, dim in reversed(list(enumerate(self.shape))):
            node = {"type": "array", "items": node}
            if dim >= 0:
                node |= {"minItems": dim, "maxItems": dim}
            elif taken and (axis == 0 or axis < last):
                # An empty batch (axis 0) has nothing to predict, and an empty list with arrays
                # inside is no tensor of the graph's rank (numpy reads [] as shape [0]): either
                # failed in the model, as the model's error, where it is the caller's.
                node |= {"minItems": 1}
        return {**node, "x-dtype": self.x_dtype, "x-shape": list(self.shape)}


class OnnxRuntime:
    """Loads `.onnx` graphs into an inference session on the CPU or, if asked, a GPU."""

    name = "onnx"
    in_process = True  # onnxruntime releases the GIL inside run() and runs no user code

    def check(self, version: ModelVersion) -> None:
        """Validate the options; raises ManifestError."""
        _threads(version)
        device(version)

    def load(self, version: ModelVersion) -> OnnxModel:
        """Open an inference session on the artifact; raises ModelLoadFailed if it cannot."""
        threads = _threads(version)
        where = device(version)
        path = _artifact(version)
        require_build(version, where)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            # enable_fallback=0: a provider that fails to start or to run raises, where
            # onnxruntime would print a warning and go on with the CPU alone.
            session = ort.InferenceSession(
                str(path), options, providers=where.providers, enable_fallback=0
            )
        except Exception as exc:  # onnxruntime's own exception types: translated here, once
            fix = (
                "Re-export the model as ONNX (e.g. with skl2onnx or torch.onnx.export) and "
                "check it with onnx.checker"
                if where.gpu is None
                else "If the model loads with options.device: cpu, the GPU is at fault: check "
                "nvidia-smi, CUDA_VISIBLE_DEVICES and the CUDA and cuDNN libraries that "
                "onnxruntime-gpu needs"
            )
            raise ModelLoadFailed(
                str(version.ref),
                f"onnxruntime cannot load '{path.name}' on {where.name}: {exc}. {fix}.",
            ) from exc
        require_started(version, where, session)
        inputs = [_tensor(version, arg, "input") for arg in session.get_inputs()]
        outputs = [_tensor(version, arg, "output") for arg in session.get_outputs()]
        return OnnxModel(session, inputs, outputs)


class OnnxModel:
    """A loaded graph; stacks a batch into one run when every input's first dim is dynamic."""

    def __init__(
        self, session: ort.InferenceSession, inputs: list[Tensor], outputs: list[Tensor]
    ) -> None:
        self._session = session
        self._inputs = inputs
        self._outputs = outputs
        self._output_names = [t.name for t in outputs]
        self._batchable = all(t.batchable for t in inputs) and all(t.batchable for t in outputs)
        self._signature = Signature(_object_schema(inputs, taken=True), _object_schema(outputs))

    @property
    def signature(self) -> Signature:
        return self._signature

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One `{output name: nested list}` per item, in order."""
        if self._batchable:
            outputs = self._predict_stacked(batch)
            if outputs is not None:
                return outputs
        return [self._as_output(self._run(self._feed(item, i))) for i, item in enumerate(batch)]

    def _predict_stacked(self, batch: Sequence[Mapping[str, Any]]) -> list[Any] | None:
        """The batch as one run, with no numpy call per item: each input's rows are gathered
        into one list and converted once, and each output is converted by one `tolist` and
        cut per item (measured on demo/digits at 64 items: 24 -> 4 us of glue a row). None when
        the items do not stack (an input missing, empty, ragged or of the wrong type, or a
        graph that reduces over the batch): the caller runs them one by one, which names the
        item at fault."""
        counts: list[int] | None = None
        feed: dict[str, np.ndarray] = {}
        for tensor in self._inputs:
            rows: list[Any] = []
            sizes: list[int] = []
            for item in batch:
                value = item.get(tensor.name)
                if type(value) is not list or not value:
                    return None
                rows += value
                sizes.append(len(value))
            if counts is None:
                counts = sizes
            elif sizes != counts:
                return None  # an item whose inputs disagree on its row count
            try:
                array = np.asarray(rows, dtype=tensor.dtype)
            except (TypeError, ValueError, OverflowError):
                return None
            if not _fits(array.shape, tensor.shape):
                return None
            feed[tensor.name] = array
        if counts is None:
            return None  # a graph without inputs: nothing to stack
        results = self._run(feed)
        if len(batch) == 1:
            return [self._as_output(results)]  # nothing to split, whatever the outputs' rows
        total = sum(counts)
        # A graph may reduce over the batch (a dynamic first dim need not be the batch axis);
        # then its rows cannot be split back, so the caller runs each item alone.
        if any(result.ndim == 0 or len(result) != total for result in results):
            return None
        columns = list(
            zip(self._output_names, [result.tolist() for result in results], strict=True)
        )
        if total == len(batch):  # one row per item, the common case: no offsets to follow
            return [{name: column[i : i + 1] for name, column in columns} for i in range(total)]
        outputs: list[Any] = []
        start = 0
        for size in counts:
            end = start + size
            outputs.append({name: column[start:end] for name, column in columns})
            start = end
        return outputs

    def _feed(self, item: Mapping[str, Any], index: int) -> dict[str, np.ndarray]:
        feed: dict[str, np.ndarray] = {}
        for tensor in self._inputs:
            if tensor.name not in item:
                raise ValueError(f"item {index}: input '{tensor.name}' is missing")
            try:
                array = np.asarray(item[tensor.name], dtype=tensor.dtype)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(
                    f"item {index}: input '{tensor.name}' is not a {tensor.x_dtype} tensor: {exc}"
                ) from None
            if not _fits(array.shape, tensor.shape):
                raise ValueError(
                    f"item {index}: input '{tensor.name}' has shape {list(array.shape)}; "
                    f"the model expects {list(tensor.shape)} (-1 = any size)"
                )
            feed[tensor.name] = array
        return feed

    def _run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        results: list[np.ndarray] = self._session.run(self._output_names, feed)
        return results

    def _as_output(self, results: list[np.ndarray]) -> dict[str, Any]:
        return {name: _jsonable(r) for name, r in zip(self._output_names, results, strict=True)}


def _fits(actual: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    if len(actual) != len(expected):
        return False
    return all(e == -1 or a == e for a, e in zip(actual, expected, strict=True))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):  # sequence outputs (e.g. seq(map)) of graphs not exported plain
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _object_schema(tensors: list[Tensor], *, taken: bool = False) -> dict[str, Any]:
    """`taken`: the inputs' schema (no other properties, no empty batch); else the outputs'."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {t.name: t.schema(taken=taken) for t in tensors},
        "required": [t.name for t in tensors],
    }
    if taken:
        schema["additionalProperties"] = False
    return schema


def _tensor(version: ModelVersion, arg: Any, role: str) -> Tensor:
    known = _TYPES.get(arg.type)
    if known is None:
        raise ModelLoadFailed(
            str(version.ref),
            f"{role} '{arg.name}' of '{version.manifest.artifact}' has type {arg.type}; "
            f"the onnx runtime serves only tensors of: {', '.join(sorted(_TYPES))}. "
            "Re-export without sequence/map outputs (for skl2onnx: options zipmap=False).",
        )
    dtype, x_dtype, json_type = known
    # A dimension is dynamic when it is symbolic (a name), unknown (None) or negative.
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or ()))
    return Tensor(arg.name, dtype, x_dtype, json_type, shape)


def _threads(version: ModelVersion) -> int:
    options = version.manifest.options
    manifest = version.path / MANIFEST_FILE
    for key in options:
        if key not in _OPTIONS:
            raise ManifestError(
                manifest,
                f"options.{key}",
                f"unknown option for runtime 'onnx'; it understands: {', '.join(_OPTIONS)}",
            )
    threads = options.get("intra_op_threads", 1)
    if (
        isinstance(threads, bool)
        or not isinstance(threads, int)
        or not 1 <= threads <= _MAX_THREADS
    ):
        raise ManifestError(
            manifest,
            "options.intra_op_threads",
            f"must be an integer from 1 to {_MAX_THREADS}, not {threads!r}; "
            "use 1 and raise `replicas` for more throughput",
        )
    return threads


def _artifact(version: ModelVersion) -> Path:
    if version.manifest.artifact is None:
        raise ManifestError(version.path / MANIFEST_FILE, "artifact", "required by runtime 'onnx'")
    return version.path / version.manifest.artifact


RUNTIME = OnnxRuntime()
