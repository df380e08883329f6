"""The peer servers (MLServer, LitServe, BentoML): their own venv and how each one is started."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from harness.models import BenchModel
from harness.procs import HOST, free_port
from harness.servers import BENCH, oip_body
from harness.targets import Route, ServerSpec, json_body

PEERS = BENCH / "peers"
VENV = BENCH / ".peers-venv"
REQUIREMENTS = PEERS / "requirements.txt"
STAMP = VENV / ".requirements-installed"  # a copy of the requirements it was installed from
INSTALL_TIMEOUT_S = 1800
PEER_START_TIMEOUT_S = 120.0


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def ensure_venv(log: Path) -> str | None:
    """Create/update bench/.peers-venv from requirements.txt; None when ready, else why not.

    The peers live in their own venv because they pin FastAPI, Starlette and OpenTelemetry
    differently from foretell. It is reinstalled only when requirements.txt changes.
    """
    wanted = REQUIREMENTS.read_text()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return None
    python3 = shutil.which("python3")
    if python3 is None:
        return "python3 not found"
    steps = [
        [python3, "-m", "venv", str(VENV)],
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "--upgrade", "pip"],
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "-r", str(REQUIREMENTS)],
    ]
    with log.open("a") as out:
        for argv in steps:
            try:
                done = subprocess.run(
                    argv, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S
                )
            except subprocess.TimeoutExpired:
                return f"`{' '.join(argv[-3:])}` took over {INSTALL_TIMEOUT_S} s"
            if done.returncode != 0:
                return f"pip failed ({_tail(log.read_text())}); full log: {log}"
    STAMP.write_text(wanted)
    return None


def _model_env(model: BenchModel) -> Mapping[str, str]:
    return {"BENCH_MODEL_PATH": str(model.onnx_path)}


def mlserver(model: BenchModel) -> ServerSpec:
    """MLServer with a custom onnxruntime MLModel, adaptive batching from model-settings.json."""

    def command(port: int, scratch: Path) -> list[str]:
        return [str(VENV / "bin" / "mlserver"), "start", str(PEERS / "mlserver")]

    def env(port: int, scratch: Path) -> Mapping[str, str]:
        # MLServer also opens gRPC and metrics ports; give them free ones so nothing collides.
        return {
            **_model_env(model),
            "MLSERVER_HOST": HOST,
            "MLSERVER_HTTP_PORT": str(port),
            "MLSERVER_GRPC_PORT": str(free_port()),
            "MLSERVER_METRICS_PORT": str(free_port()),
        }

    route = Route(
        "MLServer (adaptive batching)",
        "/v2/models/digits/infer",
        oip_body(model),
        expect='"outputs"',
    )
    return ServerSpec("MLServer", command, [route], env=env, start_timeout_s=PEER_START_TIMEOUT_S)


def litserve(model: BenchModel) -> ServerSpec:
    """LitServe with max_batch_size / batch_timeout set on the LitAPI."""

    def command(port: int, scratch: Path) -> list[str]:
        script = PEERS / "litserve" / "server.py"
        python = str(VENV / "bin" / "python")
        return [python, str(script), "--model", str(model.onnx_path), "--port", str(port)]

    body = json_body({"features": [model.row]})
    route = Route("LitServe (batching)", "/predict", body, expect='"probabilities"')
    return ServerSpec("LitServe", command, [route], start_timeout_s=PEER_START_TIMEOUT_S)


def bentoml(model: BenchModel) -> ServerSpec:
    """BentoML with a batchable API (adaptive batching), started from its service folder."""

    def command(port: int, scratch: Path) -> list[str]:
        bentoml = str(VENV / "bin" / "bentoml")
        return [bentoml, "serve", "service:OnnxService", "--host", HOST, "--port", str(port)]

    def env(port: int, scratch: Path) -> Mapping[str, str]:
        # BENTOML_HOME keeps its store and metrics files out of ~/bentoml.
        home = {"BENTOML_HOME": str(scratch / "bentoml-home"), "BENTOML_DO_NOT_TRACK": "True"}
        return {**_model_env(model), **home}

    body = json_body({"features": [model.row]})
    route = Route("BentoML (adaptive batching)", "/predict", body, expect="[[")
    return ServerSpec(
        "BentoML",
        command,
        [route],
        env=env,
        cwd=PEERS / "bentoml",
        start_timeout_s=PEER_START_TIMEOUT_S,
    )


def specs(model: BenchModel) -> list[ServerSpec]:
    """The three peers, in the order they are run."""
    return [mlserver(model), litserve(model), bentoml(model)]
