"""OIP v2's tensor translation, in process: µs per request for the demo/digits input.

    .venv/bin/python bench/oip_translation.py [--base /tmp/base/src] [--rounds 5] [--n 20000]

Per request, the work of `oip_v2` and `oip_grpc.contents` around the model, nothing else: the
64 FP32 pixels as JSON `data` (binary.split, binary.tensors, tensors.model_input), as binary
data after the JSON (the same, with `binary_data_size`), as a gRPC raw_input_contents entry
(contents.from_raw, then tensors.model_input), and the model's output for one row rendered as
response tensors (tensors.outputs, and for gRPC contents.raw of each). Body parsing (pydantic)
is not counted: it is the same either way. With --base, each round runs the code under that
`src` then this tree's, each in a fresh process, alternating; the ratio is new / base.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
SCHEMA_IN = {
    "type": "object",
    "properties": {
        "features": {
            "type": "array",
            "items": {
                "type": "array",
                "items": {"type": "number"},
                "minItems": 64,
                "maxItems": 64,
            },
            "minItems": 1,
            "x-dtype": "float32",
            "x-shape": [-1, 64],
        }
    },
    "required": ["features"],
    "additionalProperties": False,
}
SCHEMA_OUT = {
    "type": "object",
    "properties": {
        "label": {
            "type": "array",
            "items": {"type": "integer"},
            "x-dtype": "int64",
            "x-shape": [-1],
        },
        "probabilities": {
            "type": "array",
            "items": {
                "type": "array",
                "items": {"type": "number"},
                "minItems": 10,
                "maxItems": 10,
            },
            "x-dtype": "float32",
            "x-shape": [-1, 10],
        },
    },
    "required": ["label", "probabilities"],
}
# sklearn's load_digits().data[0] (a zero), as bench/harness sends it.
ROW = [
    0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0, 0.0, 0.0, 13.0, 15.0, 10.0, 15.0, 5.0, 0.0,
    0.0, 3.0, 15.0, 2.0, 0.0, 11.0, 8.0, 0.0, 0.0, 4.0, 12.0, 0.0, 0.0, 8.0, 8.0, 0.0,
    0.0, 5.0, 8.0, 0.0, 0.0, 9.0, 8.0, 0.0, 0.0, 4.0, 11.0, 0.0, 1.0, 12.0, 7.0, 0.0,
    0.0, 2.0, 14.0, 5.0, 10.0, 12.0, 0.0, 0.0, 0.0, 0.0, 6.0, 13.0, 10.0, 0.0, 0.0, 0.0,
]  # fmt: skip
OUTPUT = {
    "label": [0],
    "probabilities": [[0.93, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.034]],
}


def child(n: int) -> dict[str, float]:
    """µs per request of each case, with the code importable as `foretell` now."""
    import numpy as np

    from foretell.api.body import parse_body
    from foretell.api.dialects.oip_v2 import binary, tensors
    from foretell.api.dialects.oip_v2.schemas import InferenceRequest
    from foretell.api.oip_grpc import contents

    model = "demo/digits"
    tensor = {"name": "features", "shape": [1, 64], "datatype": "FP32"}
    as_json = json.dumps({"inputs": [tensor | {"data": ROW}]}).encode()
    raw = np.asarray(ROW, dtype="<f4").tobytes()
    head = json.dumps(
        {"inputs": [tensor | {"parameters": {"binary_data_size": len(raw)}}]}
    ).encode()
    as_binary = head + raw
    json_body = parse_body(as_json, InferenceRequest, max_depth=64)
    binary_body = parse_body(head, InferenceRequest, max_depth=64)

    def json_in() -> None:
        _head, blob = binary.split(as_json, None)
        tensors.model_input(
            model, json_body.inputs, binary.tensors(json_body.inputs, blob), SCHEMA_IN
        )

    def binary_in() -> None:
        _head, blob = binary.split(as_binary, str(len(head)))
        decoded = binary.tensors(binary_body.inputs, blob)
        tensors.model_input(model, binary_body.inputs, decoded, SCHEMA_IN)

    def grpc_in() -> None:
        flat = contents.from_raw("features", "FP32", [1, 64], raw)
        tensors.model_input(model, binary_body.inputs, {"features": flat}, SCHEMA_IN)

    def http_out() -> None:
        tensors.outputs(model, OUTPUT, None, SCHEMA_OUT)

    def grpc_out() -> None:
        for t in tensors.outputs(model, OUTPUT, None, SCHEMA_OUT):
            contents.raw(t["datatype"], t["data"])

    cases = {
        "JSON data in": json_in,
        "binary data in": binary_in,
        "gRPC raw in": grpc_in,
        "outputs (HTTP)": http_out,
        "outputs (gRPC raw)": grpc_out,
    }
    found: dict[str, float] = {}
    for label, case in cases.items():
        for _ in range(n // 10):
            case()
        start = time.perf_counter()
        for _ in range(n):
            case()
        found[label] = (time.perf_counter() - start) / n * 1e6
    return found


def run(src: Path, n: int) -> dict[str, float]:
    env = os.environ | {"PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--n", str(n)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    found: dict[str, float] = json.loads(out.stdout)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base", type=Path, help="another tree's src to compare against")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=20000, help="requests per case per round")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.n)))
        return
    trees = {"base": args.base, "new": SRC} if args.base else {"new": SRC}
    rounds: dict[str, list[dict[str, float]]] = {t: [] for t in trees}
    for _ in range(args.rounds):
        for label, src in trees.items():
            rounds[label].append(run(src, args.n))
    cases = list(rounds["new"][0])
    print(f"µs per request, median of {args.rounds} rounds ({args.n} requests a case a round)")
    print("| case | " + " | ".join(trees) + (" | new / base |" if args.base else " |"))
    print("| --- |" + " ---: |" * (len(trees) + (1 if args.base else 0)))
    for case in cases:
        med = {t: statistics.median(r[case] for r in rounds[t]) for t in trees}
        cells = " | ".join(f"{med[t]:.1f}" for t in trees)
        ratio = f" | {med['new'] / med['base']:.2f}x" if args.base else ""
        print(f"| {case} | {cells}{ratio} |")


if __name__ == "__main__":
    main()
