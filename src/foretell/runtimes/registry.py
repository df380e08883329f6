"""Find a runtime by name, importing its module only then (onnxruntime, sklearn stay unloaded)."""

from __future__ import annotations

import importlib

from foretell.runtimes.base import Runtime

# Module of each runtime; each module exposes its instance as `RUNTIME`.
_MODULES = {
    "onnx": "foretell.runtimes.onnx",
    "python": "foretell.runtimes.python",
    "sklearn": "foretell.runtimes.sklearn",
    "forecast": "foretell.runtimes.forecast",
    "transformers": "foretell.runtimes.hf",  # not .transformers: that name is the library's
}
# Runtimes whose replicas may run on a thread of the server (see `Runtime.in_process`), known
# without importing them: importing scikit-learn into the server alone costs ~1 s and ~100 MB.
_IN_PROCESS = frozenset({"onnx"})
RUNTIME_NAMES = tuple(sorted(_MODULES))


def get_runtime(name: str) -> Runtime:
    """The runtime called `name`; ValueError naming the known runtimes if there is none."""
    module_name = _MODULES.get(name)
    if module_name is None:
        known = ", ".join(RUNTIME_NAMES)
        raise ValueError(f"unknown runtime '{name}'; known runtimes: {known}")
    runtime: Runtime = importlib.import_module(module_name).RUNTIME
    return runtime


def runs_in_process(name: str) -> bool:
    """Whether runtime `name` is safe on a thread of the server process."""
    return name in _IN_PROCESS
