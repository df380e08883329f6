"""BentoML peer: a service whose batchable API runs the ONNX model with onnxruntime.

@bentoml.api(batchable=True) turns on BentoML's adaptive batching: requests are concatenated
along dimension 0 up to max_batch_size, with the batch window tuned to keep latency under
max_latency_ms. The model path comes from BENCH_MODEL_PATH, set by bench/compare.py.

Run: BENCH_MODEL_PATH=model.onnx bentoml serve service:OnnxService --port 8000
     (from bench/peers/bentoml)
"""

from __future__ import annotations

import os

import bentoml
import numpy as np
import onnxruntime as ort


# Access log off, as for every other server in the comparison (it is on by default).
@bentoml.service(workers=1, traffic={"timeout": 30}, logging={"access": {"enabled": False}})
class OnnxService:
    """POST /predict {"features": [[...]]} -> probabilities [[...]] (one row per input row)."""

    def __init__(self) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            os.environ["BENCH_MODEL_PATH"], options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=1000)
    def predict(self, features: np.ndarray) -> np.ndarray:
        (probabilities,) = self.session.run(
            ["probabilities"], {self.input_name: features.astype(np.float32)}
        )
        return probabilities
