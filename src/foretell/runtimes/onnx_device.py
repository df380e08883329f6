"""Where an ONNX model runs (`options.device`): the execution providers that asks onnxruntime
for, and a load error naming what is missing when the installed build cannot give them.

A model that asks for a GPU runs on one or fails to load: onnxruntime on its own falls back to
the CPU, with a warning, when the CUDA provider is not in its build or cannot start (missing
CUDA or cuDNN libraries, no visible GPU), and again when a run fails inside the provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import onnxruntime as ort

from foretell.errors import ManifestError, ModelLoadFailed
from foretell.manifest import ModelVersion
from foretell.manifest.manifest import MANIFEST_FILE

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_DEVICE = re.compile(r"cpu|cuda(?::(\d{1,3}))?")


@dataclass(frozen=True, slots=True)
class Device:
    """`cpu`, or `cuda` with the index of the GPU (`cuda` alone is GPU 0)."""

    name: str
    gpu: int | None = None

    @property
    def providers(self) -> list[Any]:
        """onnxruntime's `providers` argument: CUDA first, the CPU for the nodes CUDA lacks."""
        if self.gpu is None:
            return [CPU]
        return [(CUDA, {"device_id": self.gpu}), CPU]


def device(version: ModelVersion) -> Device:
    """The manifest's `options.device` (default `cpu`); raises ManifestError if malformed."""
    value = version.manifest.options.get("device", "cpu")
    matched = _DEVICE.fullmatch(value) if isinstance(value, str) else None
    if matched is None:
        raise ManifestError(
            version.path / MANIFEST_FILE,
            "options.device",
            f"must be cpu, cuda or cuda:N (N a GPU index), not {value!r}",
        )
    if value == "cpu":
        return Device("cpu")
    return Device(value, int(matched.group(1) or 0))


def require_build(version: ModelVersion, where: Device) -> None:
    """Raise ModelLoadFailed when `where` is a GPU and this onnxruntime build has no CUDA."""
    if where.gpu is None:
        return
    available = ort.get_available_providers()
    if CUDA in available:
        return
    raise ModelLoadFailed(
        str(version.ref),
        f"options.device is '{where.name}' but the installed onnxruntime {ort.__version__} "
        f"has no {CUDA} (it has {', '.join(available)}): install onnxruntime-gpu in place "
        "of onnxruntime (pip uninstall onnxruntime && pip install onnxruntime-gpu), "
        "or set options.device: cpu",
    )


def require_started(version: ModelVersion, where: Device, session: ort.InferenceSession) -> None:
    """Raise ModelLoadFailed when the session asked for CUDA and runs without it."""
    if where.gpu is None or CUDA in session.get_providers():
        return
    raise ModelLoadFailed(
        str(version.ref),
        f"options.device is '{where.name}' and onnxruntime {ort.__version__} has {CUDA}, "
        f"but the session started without it (providers: {', '.join(session.get_providers())}); "
        "onnxruntime's own error is in the replica's log. Usually the CUDA or cuDNN libraries "
        "that this onnxruntime-gpu needs are missing or of another major version, or no GPU "
        "is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)",
    )
