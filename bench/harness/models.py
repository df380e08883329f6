"""The two benchmark models: the shipped digits MLP and a heavier MLP built with onnx.helper."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "models"
DIGITS_ONNX = EXAMPLES / "demo" / "digits" / "1" / "model.onnx"

# 256 -> 3072 -> 3072 -> 3072 -> 10: ~20M float32 weights (79 MB), about 2.3 ms for one row
# with one thread on the 2-core AMD EPYC VM this was tuned on, ~15 ms for 64 rows. Heavy enough
# that the model, not HTTP, is the cost, and that batching shows (64 rows cost ~6.5 single calls).
HEAVY_WIDTHS = (256, 3072, 3072, 3072, 10)
HEAVY_SEED = 20261123
HEAVY_REF = "bench/heavy"
HEAVY_MANIFEST = """\
runtime: onnx
artifact: model.onnx
description: 'Benchmark MLP {widths} with random weights (seed {seed}), built by bench/compare.py.'
batching:
  max_batch_size: 64
  max_delay_ms: 0
"""


@dataclass(frozen=True)
class BenchModel:
    """One model as every server sees it: the ONNX file, its input name and one request row."""

    ref: str  # foretell's owner/name
    onnx_path: Path
    input_name: str
    row: list[float]  # the single row every request sends
    rows: np.ndarray  # float32 rows for the in-process limit (batch sizes up to len(rows))


def digits_model() -> BenchModel:
    """demo/digits with a realistic request: sklearn's first 8x8 digit image (a zero)."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    images = load_digits().data.astype(np.float32)
    row = [float(x) for x in images[0]]
    return BenchModel("demo/digits", DIGITS_ONNX, "features", row, images[:128])


def _dense_layers(
    widths: tuple[int, ...], rng: np.random.Generator
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """MatMul + Add (+ Relu between layers) nodes and their He-initialised weights."""
    nodes: list[onnx.NodeProto] = []
    weights: list[onnx.TensorProto] = []
    previous = "features"
    last = len(widths) - 2
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        w = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in)).astype(np.float32)
        b = np.zeros(fan_out, dtype=np.float32)
        weights += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("MatMul", [previous, f"w{i}"], [f"mm{i}"]))
        nodes.append(helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"dense{i}"]))
        previous = f"dense{i}"
        if i < last:
            nodes.append(helper.make_node("Relu", [previous], [f"relu{i}"]))
            previous = f"relu{i}"
    return nodes, weights


def heavy_onnx(widths: tuple[int, ...] = HEAVY_WIDTHS, seed: int = HEAVY_SEED) -> bytes:
    """The serialized heavy MLP: `features` [N, widths[0]] -> `label` [N], `probabilities`."""
    nodes, weights = _dense_layers(widths, np.random.default_rng(seed))
    logits = nodes[-1].output[0]
    # Same outputs as demo/digits (label + probabilities), so every server answers alike.
    nodes.append(helper.make_node("Softmax", [logits], ["probabilities"], axis=1))
    nodes.append(helper.make_node("ArgMax", [logits], ["label"], axis=1, keepdims=0))
    graph = helper.make_graph(
        nodes,
        "bench_heavy",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", widths[0]])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", widths[-1]]),
        ],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by any onnxruntime >= 1.10
    onnx.checker.check_model(model)
    serialized: bytes = model.SerializeToString()
    return serialized


def heavy_model(repository: Path) -> BenchModel:
    """Build the heavy MLP into `repository` laid out like examples/models (bench/heavy/1/)."""
    folder = repository / HEAVY_REF / "1"
    folder.mkdir(parents=True)
    onnx_path = folder / "model.onnx"
    onnx_path.write_bytes(heavy_onnx())
    manifest = HEAVY_MANIFEST.format(widths="-".join(map(str, HEAVY_WIDTHS)), seed=HEAVY_SEED)
    (folder / "foretell.yaml").write_text(manifest)
    rng = np.random.default_rng(HEAVY_SEED + 1)
    rows = rng.standard_normal((128, HEAVY_WIDTHS[0])).astype(np.float32)
    # Four decimals keep the JSON body small (~2 KB) without changing what is computed much.
    row = [round(float(x), 4) for x in rows[0]]
    return BenchModel(HEAVY_REF, onnx_path, "features", row, rows)
