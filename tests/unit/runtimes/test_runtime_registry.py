"""The registry finds runtimes by name and imports their frameworks only when asked."""

from __future__ import annotations

import subprocess
import sys

import pytest

from foretell.runtimes import RUNTIME_NAMES, get_runtime
from foretell.runtimes.registry import runs_in_process


@pytest.mark.parametrize("name", ["onnx", "python", "sklearn"])
def test_each_runtime_is_found_by_its_name(name: str) -> None:
    assert get_runtime(name).name == name


def test_unknown_runtime_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown runtime 'tensorflow'") as caught:
        get_runtime("tensorflow")
    assert "forecast, onnx, python, sklearn, transformers" in str(caught.value)
    assert RUNTIME_NAMES == ("forecast", "onnx", "python", "sklearn", "transformers")


def test_frameworks_are_imported_only_with_their_runtime() -> None:
    # A fresh interpreter: this test process has long imported everything.
    code = (
        "import sys\n"
        "from foretell.runtimes import get_runtime\n"
        "get_runtime('python')\n"
        "heavy = [m for m in ('onnxruntime', 'sklearn', 'skops') if m in sys.modules]\n"
        "get_runtime('onnx')\n"
        "print(heavy, 'onnxruntime' in sys.modules, 'sklearn' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split("\n")[0] == "[] True False"


@pytest.mark.parametrize("name", RUNTIME_NAMES)
def test_the_registry_knows_without_importing_which_runtimes_may_run_in_process(name: str) -> None:
    assert runs_in_process(name) is get_runtime(name).in_process
