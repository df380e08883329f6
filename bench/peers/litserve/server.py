"""LitServe peer: a LitAPI over one onnxruntime session with LitServe's dynamic batching on.

LitServe collects up to max_batch_size decoded requests (waiting at most batch_timeout seconds),
calls batch() -> predict() -> unbatch(), and encodes each answer separately.

Run: python bench/peers/litserve/server.py --model path/to/model.onnx --port 8000
"""

from __future__ import annotations

import argparse
from typing import Any

import litserve as ls
import numpy as np
import onnxruntime as ort

MAX_BATCH_SIZE = 64
BATCH_TIMEOUT_S = 0.002


class OnnxAPI(ls.LitAPI):
    """POST /predict {"features": [[...]]} -> {"label": [...], "probabilities": [[...]]}."""

    def __init__(self, model_path: str) -> None:
        super().__init__(max_batch_size=MAX_BATCH_SIZE, batch_timeout=BATCH_TIMEOUT_S)
        self.model_path = model_path

    def setup(self, device: str) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            self.model_path, options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    # `request` is left unannotated on purpose: LitServe reads the annotation to choose how
    # FastAPI parses the body, and none means the plain JSON body (the usual LitServe way).
    def decode_request(self, request):  # type: ignore[no-untyped-def]
        return np.asarray(request["features"], dtype=np.float32)

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(inputs)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        label, probabilities = self.session.run(["label", "probabilities"], {self.input_name: x})
        return label, probabilities

    def unbatch(self, output: tuple[np.ndarray, np.ndarray]) -> list[tuple[Any, Any]]:
        label, probabilities = output
        return [(label[i : i + 1], probabilities[i : i + 1]) for i in range(len(label))]

    def encode_response(self, output: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
        label, probabilities = output
        return {"label": label.tolist(), "probabilities": probabilities.tolist()}


def main() -> None:
    """Serve with one API server process and one inference worker on the CPU."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ls.LitServer(OnnxAPI(args.model), accelerator="cpu", devices=1, workers_per_device=1)
    server.run(
        host=args.host,
        port=args.port,
        num_api_servers=1,
        generate_client_file=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
