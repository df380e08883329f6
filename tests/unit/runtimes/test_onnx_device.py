"""options.device on an ONNX model: the CUDA provider where the build has it, else a load error
naming what is missing; never a silent run on the CPU. (A GPU machine: scripts/gpu_check.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest

from foretell.errors import ManifestError, ModelLoadFailed
from foretell.manifest import ModelVersion, Repository
from foretell.runtimes import get_runtime
from foretell.runtimes.onnx_device import CUDA, Device, device, require_started

Find = Callable[[Repository, str], ModelVersion]
MakeVersion = Callable[..., ModelVersion]

CPU_BUILD = CUDA not in ort.get_available_providers()


def iris(
    examples: Repository, find: Find, make_version: MakeVersion, **options: Any
) -> ModelVersion:
    data = (find(examples, "demo/iris:1").path / "model.onnx").read_bytes()
    manifest = {"runtime": "onnx", "artifact": "model.onnx", "options": options}
    return make_version(manifest, {"model.onnx": data})


@pytest.mark.skipif(not CPU_BUILD, reason="this onnxruntime has CUDA: scripts/gpu_check.py")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_a_gpu_on_a_build_without_cuda_is_a_load_error_naming_what_is_missing(
    examples: Repository, find: Find, make_version: MakeVersion, name: str
) -> None:
    version = iris(examples, find, make_version, device=name)
    get_runtime("onnx").check(version)  # well formed: the build, not the manifest, lacks it
    with pytest.raises(ModelLoadFailed) as caught:
        get_runtime("onnx").load(version)
    reason = caught.value.reason
    assert f"options.device is '{name}'" in reason
    assert f"onnxruntime {ort.__version__} has no CUDAExecutionProvider" in reason
    assert "install onnxruntime-gpu" in reason
    assert "options.device: cpu" in reason


def test_cpu_is_the_default_and_can_be_named(
    examples: Repository, find: Find, make_version: MakeVersion
) -> None:
    for options in ({}, {"device": "cpu"}):
        model = get_runtime("onnx").load(iris(examples, find, make_version, **options))
        assert model.predict([{"features": [[5.1, 3.5, 1.4, 0.2]]}])[0]["label"] == [0]
        assert model._session.get_providers() == ["CPUExecutionProvider"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["gpu", "CUDA", "cuda:", "cuda:x", "cuda:1234", 0, None])
def test_a_malformed_device_is_a_manifest_error(
    examples: Repository, find: Find, make_version: MakeVersion, value: object
) -> None:
    version = iris(examples, find, make_version, device=value)
    with pytest.raises(ManifestError, match=r"must be cpu, cuda or cuda:N") as caught:
        get_runtime("onnx").check(version)
    assert caught.value.field == "options.device"
    assert caught.value.path == version.path / "foretell.yaml"


def test_cuda_is_asked_for_first_on_the_gpu_named(
    examples: Repository, find: Find, make_version: MakeVersion
) -> None:
    assert device(iris(examples, find, make_version, device="cuda")) == Device("cuda", 0)
    where = device(iris(examples, find, make_version, device="cuda:2"))
    assert where.providers == [(CUDA, {"device_id": 2}), "CPUExecutionProvider"]


class StartedWithout:
    """A session as onnxruntime leaves it when CUDA could not start: the CPU alone."""

    def get_providers(self) -> list[str]:
        return ["CPUExecutionProvider"]


def test_a_session_that_started_without_cuda_is_a_load_error(tmp_path: Path) -> None:
    version = ModelVersion("acme", "gpu", 1, tmp_path, None)  # type: ignore[arg-type]
    with pytest.raises(ModelLoadFailed) as caught:
        require_started(version, Device("cuda", 0), StartedWithout())  # type: ignore[arg-type]
    reason = caught.value.reason
    assert "started without it (providers: CPUExecutionProvider)" in reason
    assert "CUDA or cuDNN libraries" in reason
    assert "nvidia-smi" in reason
    require_started(version, Device("cpu"), StartedWithout())  # type: ignore[arg-type]
