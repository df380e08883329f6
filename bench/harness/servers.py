"""The servers compared: foretell (one entry per route) and the two in-repo baselines."""

from __future__ import annotations

import subprocess
import sys
from collections import ChainMap
from pathlib import Path

import httpx

from harness.models import ROOT, BenchModel
from harness.procs import HOST
from harness.targets import Route, ServerSpec, json_body

BENCH = ROOT / "bench"
VENV_BIN = Path(sys.executable).parent
NAIVE = "naive FastAPI"
NAIVE_SYNC = "naive FastAPI def"


def _succeeded(response: httpx.Response) -> str | None:
    """The native route answers 201 even when the prediction failed: the record says which."""
    record = response.json()
    if record.get("status") != "succeeded":
        return f"status {record.get('status')!r}, error {record.get('error')!r}"
    return None


def oip_body(model: BenchModel) -> bytes:
    """An Open Inference Protocol v2 request (also MLServer's natural format)."""
    tensor = {
        "name": model.input_name,
        "shape": [1, len(model.row)],
        "datatype": "FP32",
        "data": model.row,
    }
    return json_body({"inputs": [tensor]})


def foretell_routes(model: BenchModel, key: dict[str, str]) -> list[Route]:
    """Every foretell route to compare, native first. A new dialect is one more entry here.
    `key` holds the Authorization header, filled in once the server's key is made."""
    named_inputs = {model.input_name: [model.row]}
    return [
        Route(
            "foretell native (recorded)",
            "/v1/predictions",
            json_body({"model": model.ref, "input": named_inputs}),
            headers=ChainMap({"Prefer": "wait=10"}, key),
            expect='"status":"succeeded"',
            check=_succeeded,
            recorded=True,
        ),
        # GPUX (seed 003): flat JSON of named inputs, named outputs back, no record kept; the
        # model named in the path, as the server has several.
        Route(
            "foretell GPUX /predict (unrecorded)",
            f"/models/{model.ref}/predict",
            json_body(named_inputs),
            headers=key,
            expect='"probabilities"',
            optional=True,
        ),
        # Open Inference Protocol v2; tritonclient sends the name with its "/" unescaped.
        Route(
            "foretell OIP v2 /v2/models/…/infer",
            f"/v2/models/{model.ref}/infer",
            oip_body(model),
            headers=key,
            expect='"outputs"',
            optional=True,
        ),
    ]


def foretell(repository: Path, model: BenchModel) -> ServerSpec:
    """`foretell serve` on `repository` with a fresh data directory in the scratch dir, called
    with a predict key of the model's owner, as a production client would be."""
    key: dict[str, str] = {}

    def command(port: int, scratch: Path) -> list[str]:
        exe = str(VENV_BIN / "foretell")
        data_dir = ["--data-dir", str(scratch / "data")]
        owner = model.ref.split("/")[0]
        create = [exe, "keys", "create", "--owner", owner, "--scope", "predict", *data_dir]
        made = subprocess.run(create, capture_output=True, text=True, check=True)
        key["Authorization"] = f"Bearer {made.stdout.strip()}"
        serve = ["serve", str(repository), "--host", HOST, "--port", str(port)]
        return [exe, *serve, *data_dir]

    return ServerSpec(
        "foretell",
        command,
        foretell_routes(model, key),
        ready_path="/health/ready",
        start_timeout_s=120.0,
        fatal=True,
    )


def naive_fastapi(model: BenchModel, *, sync: bool = False) -> ServerSpec:
    """bench/baselines/naive_fastapi.py serving the model's ONNX file: `async def` calling
    onnxruntime inline (the stronger baseline, which the targets use), or with `sync` the
    `def` endpoint FastAPI's docs suggest for blocking work, run on its thread pool."""

    def command(port: int, scratch: Path) -> list[str]:
        script = BENCH / "baselines" / "naive_fastapi.py"
        args = [sys.executable, str(script), "--model", str(model.onnx_path), "--port", str(port)]
        return [*args, "--sync"] if sync else args

    route = Route(
        "naive FastAPI + ort (def, thread pool)" if sync else "naive FastAPI + ort (async def)",
        "/predict",
        json_body({"features": [model.row]}),
        expect='"probabilities"',
    )
    return ServerSpec(NAIVE_SYNC if sync else NAIVE, command, [route])


def starlette_constant(model: BenchModel) -> ServerSpec:
    """bench/baselines/starlette_constant.py: the HTTP ceiling, sent this model's request body."""

    def command(port: int, scratch: Path) -> list[str]:
        script = BENCH / "baselines" / "starlette_constant.py"
        return [sys.executable, str(script), "--port", str(port)]

    route = Route("Starlette constant (ceiling)", "/predict", json_body({"features": [model.row]}))
    return ServerSpec("Starlette constant", command, [route])
