"""MLServer peer: a custom MLModel runtime that runs the ONNX model with onnxruntime.

Adaptive batching is on through model-settings.json (max_batch_size, max_batch_time): MLServer
concatenates queued V2 requests along the first dimension, calls predict() once, and splits
the outputs back. The model path comes from BENCH_MODEL_PATH, set by bench/compare.py.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxModel(MLModel):
    """label + probabilities from one onnxruntime session (1 intra-op, 1 inter-op thread)."""

    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            os.environ["BENCH_MODEL_PATH"], options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        features = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        label, probabilities = self._session.run(
            ["label", "probabilities"], {self._input: features}
        )
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                NumpyCodec.encode_output("label", label),
                NumpyCodec.encode_output("probabilities", probabilities),
            ],
        )
