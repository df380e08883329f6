"""Naive baseline: FastAPI + onnxruntime, session.run inline in the endpoint, no batching.

This is what a first deployment of an ONNX model typically looks like: a pydantic body, one
session with one intra-op and one inter-op thread, one uvicorn worker (httptools + uvloop,
access log off). `async def` is the default endpoint: it calls onnxruntime inline on the event
loop. It is the faster of the two here: on the 2-core bench VM (server on core 0, wrk on core 1,
3 s runs) digits gave ~7,100 req/s at 64 connections and p50 0.17 ms at 1, against ~3,200-3,700
req/s and 0.30 ms for a plain `def` endpoint, which FastAPI runs in its thread pool (a thread
hop per request, and no gain on one core); on the heavy model the two were within run-to-run
noise. `--sync` serves the `def` variant to repeat that comparison.

Run: python bench/baselines/naive_fastapi.py --model path/to/model.onnx --port 8000 [--sync]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Body(BaseModel):
    """The request: rows of float features."""

    features: list[list[float]]


def session(model_path: str) -> ort.InferenceSession:
    """One CPU session, one intra-op and one inter-op thread."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])


def build_app(model_path: str, sync: bool) -> FastAPI:
    """POST /predict -> {"label": [...], "probabilities": [[...]]}."""
    sess = session(model_path)
    input_name = sess.get_inputs()[0].name
    app = FastAPI()

    def run(body: Body) -> dict[str, Any]:
        feed = {input_name: np.asarray(body.features, dtype=np.float32)}
        label, probabilities = sess.run(["label", "probabilities"], feed)
        return {"label": label.tolist(), "probabilities": probabilities.tolist()}

    if sync:

        @app.post("/predict")
        def predict_sync(body: Body) -> dict[str, Any]:
            return run(body)

    else:

        @app.post("/predict")
        async def predict(body: Body) -> dict[str, Any]:
            return run(body)  # blocks the loop while onnxruntime runs: that is the naive part

    return app


def main() -> None:
    """Parse the command line and serve with one uvicorn worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", required=True, help="path to the .onnx file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sync", action="store_true", help="a plain def endpoint instead")
    args = parser.parse_args()
    uvicorn.run(
        build_app(args.model, args.sync),
        host=args.host,
        port=args.port,
        http="httptools",
        loop="uvloop",
        workers=1,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
