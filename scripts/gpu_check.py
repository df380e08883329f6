"""On a machine with a GPU: does `options.device: cuda` run demo/digits on onnxruntime's CUDA
provider? Installs nothing and reaches no network; run it with the venv's python:

    .venv/bin/python scripts/gpu_check.py [--device cuda:0]

Copies examples/models/demo/digits/1 into a temporary folder with `options.device` set, loads it
with foretell's onnx runtime and a thread replica (as `foretell serve` would), predicts one
image of a zero and a batch of 64, and prints the providers the session uses and the answers
beside the CPU's. Exit code 0 when the session runs on CUDA and agrees with the CPU, 1 when the
model failed to load (the error names what is missing) or answered differently.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import yaml

from foretell.errors import ModelLoadFailed
from foretell.manifest import ModelVersion, scan_repository
from foretell.workers import ThreadReplica
from foretell.workers.child import load_model

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "models" / "demo" / "digits" / "1"
# sklearn's load_digits().data[0], a zero (sklearn is not needed on the GPU machine).
ZERO = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4]
ZERO += [12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10]
ZERO += [12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]


def version_on(device: str, root: Path) -> ModelVersion:
    """demo/digits:1 copied under `root` with `options.device: device`."""
    folder = root / "demo" / "digits" / "1"
    shutil.copytree(DIGITS, folder)
    manifest = yaml.safe_load((folder / "foretell.yaml").read_text())
    manifest["options"] = {**manifest.get("options", {}), "device": device}
    (folder / "foretell.yaml").write_text(yaml.safe_dump(manifest))
    (version,) = scan_repository(root).versions
    return version


async def predict(version: ModelVersion, items: list[dict[str, Any]]) -> tuple[list[Any], float]:
    """Outputs of `items` through a thread replica, and the seconds of the batch."""
    replica = ThreadReplica(version)
    await replica.start()
    try:
        await replica.predict(items)  # the first run on a GPU pays for its kernels
        started = time.perf_counter()
        outcomes = await replica.predict(items)
        elapsed = time.perf_counter() - started
    finally:
        await replica.stop()
    for outcome in outcomes:
        if outcome.error is not None:
            raise SystemExit(f"prediction failed: {outcome.error}")
    return [o.output for o in outcomes], elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda or cuda:N (default cuda)")
    args = parser.parse_args()
    if not args.device.startswith("cuda"):
        parser.error(f"--device must be cuda or cuda:N, not {args.device!r}")
    print(f"onnxruntime {ort.__version__}, device {ort.get_device()}")
    print(f"available providers: {', '.join(ort.get_available_providers())}")
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        query = [smi, "--query-gpu=index,name,driver_version,memory.total", "--format=csv"]
        print(subprocess.run(query, capture_output=True, text=True, check=False).stdout.strip())
    else:
        print("nvidia-smi: not found")
    rng = np.random.default_rng(0)
    batch = [{"features": [ZERO]}] + [
        {"features": [rng.integers(0, 17, 64).tolist()]} for _ in range(63)
    ]
    answers: dict[str, list[Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for device in ("cpu", args.device):
            version = version_on(device, Path(scratch) / device)
            try:
                model = load_model(version)
            except ModelLoadFailed as exc:
                print(f"{device}: LOAD FAILED: {exc.reason}")
                return 1
            providers = model._session.get_providers()  # type: ignore[attr-defined]
            print(f"{device}: session providers {providers}")
            single, _ = asyncio.run(predict(version, batch[:1]))
            outputs, seconds = asyncio.run(predict(version, batch))
            print(
                f"{device}: the zero is read as {single[0]['label']}; "
                f"a batch of 64 took {seconds * 1000:.2f} ms"
            )
            answers[device] = outputs
    labels = {device: [o["label"] for o in outputs] for device, outputs in answers.items()}
    probabilities = {
        device: np.array([o["probabilities"] for o in outputs])
        for device, outputs in answers.items()
    }
    agree = labels["cpu"] == labels[args.device] and np.allclose(
        probabilities["cpu"], probabilities[args.device], atol=1e-4
    )
    on_cuda = "CUDAExecutionProvider" in providers
    print(f"on CUDA: {on_cuda}; {args.device} agrees with the CPU on 64 images: {agree}")
    return 0 if on_cuda and agree and labels["cpu"][0] == [0] else 1


if __name__ == "__main__":
    sys.exit(main())
