"""The onnx runtime: schemas read from graphs, stacked batches equal to single predictions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from sklearn.datasets import load_digits, load_iris

from foretell.errors import InvalidInput, ManifestError, ModelLoadFailed
from foretell.manifest import ModelVersion, Repository
from foretell.manifest.schema import InputValidator
from foretell.runtimes import LoadedModel, get_runtime

Find = Callable[[Repository, str], ModelVersion]
Load = Callable[[ModelVersion], LoadedModel]
MakeVersion = Callable[..., ModelVersion]


def graph_bytes(nodes: list[Any], inputs: list[Any], outputs: list[Any]) -> bytes:
    graph = helper.make_graph(nodes, "test", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def onnx_version(make_version: MakeVersion, data: bytes, **options: Any) -> ModelVersion:
    manifest = {"runtime": "onnx", "artifact": "model.onnx", "options": options}
    return make_version(manifest, {"model.onnx": data})


def test_iris_signature_is_read_from_the_graph(
    examples: Repository, find: Find, load: Load
) -> None:
    model = load(find(examples, "demo/iris:1"))
    inputs, outputs = model.signature.input_schema, model.signature.output_schema
    assert inputs["required"] == ["features"]
    assert inputs["additionalProperties"] is False
    features = inputs["properties"]["features"]
    assert (features["x-dtype"], features["x-shape"]) == ("float32", [-1, 4])
    # The batch dimension is dynamic, but an empty batch has nothing to predict: the
    # caller's error, not the model's (it failed in the model as "shape [0]").
    assert (features["minItems"], "maxItems" in features) == (1, False)
    assert features["items"] == {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 4,
        "maxItems": 4,
    }
    assert list(outputs["properties"]) == ["label", "probabilities"]
    label, proba = outputs["properties"]["label"], outputs["properties"]["probabilities"]
    assert (label["x-dtype"], label["x-shape"], label["items"]) == (
        "int64",
        [-1],
        {"type": "integer"},
    )
    assert (proba["x-dtype"], proba["x-shape"]) == ("float32", [-1, 3])
    validator = InputValidator(inputs)  # the service checks requests with this schema
    assert validator.validate({"features": [[1, 2, 3, 4]]}) == {"features": [[1, 2, 3, 4]]}
    with pytest.raises(InvalidInput, match=r"features\.0"):
        validator.validate({"features": [[1, 2, 3]]})
    with pytest.raises(InvalidInput, match=r"features: List should have at least 1 item"):
        validator.validate({"features": []})


def test_iris_predicts_the_species(examples: Repository, find: Find, load: Load) -> None:
    model = load(find(examples, "demo/iris:1"))
    x, y = load_iris(return_X_y=True)
    (output,) = model.predict([{"features": x[[0, 60, 120]].tolist()}])
    assert output["label"] == [0, 1, 2] == y[[0, 60, 120]].tolist()
    assert np.allclose(np.sum(output["probabilities"], axis=1), 1.0, atol=1e-5)
    assert output["probabilities"][0][0] > 0.9


def test_iris_versions_differ_in_probabilities(
    examples: Repository, find: Find, load: Load
) -> None:
    item = {"features": [[5.9, 3.0, 4.2, 1.5]]}
    (first,) = load(find(examples, "demo/iris:1")).predict([item])
    (second,) = load(find(examples, "demo/iris:2")).predict([item])
    assert first["label"] == second["label"] == [1]
    assert np.abs(np.subtract(first["probabilities"], second["probabilities"])).max() > 0.02


def test_stacked_batch_equals_single_predictions(
    examples: Repository, find: Find, load: Load
) -> None:
    model = load(find(examples, "demo/digits:1"))
    x, y = load_digits(return_X_y=True)
    # Items of 1, 2 and 3 rows: the stacked run must split outputs back by row counts.
    items = [{"features": x[i : i + 1 + i % 3].tolist()} for i in range(40)]
    batched = model.predict(items)
    singles = [model.predict([item])[0] for item in items]
    assert len(batched) == 40
    for got, want, item in zip(batched, singles, items, strict=True):
        assert got["label"] == want["label"]
        assert len(got["label"]) == len(item["features"])
        assert np.allclose(got["probabilities"], want["probabilities"], atol=1e-5)
    assert batched[0]["label"] == [y[0]]
    assert model.signature.input_schema["properties"]["features"]["x-shape"] == [-1, 64]


def test_a_batch_is_converted_once_per_input_not_once_per_item(
    examples: Repository, find: Find, load: Load, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Per-item numpy calls were most of the glue around onnxruntime: 24 us a row at 64 items.
    model = load(find(examples, "demo/digits:1"))
    x, y = load_digits(return_X_y=True)
    items = [{"features": x[i : i + 1].tolist()} for i in range(64)]
    conversions: list[object] = []
    asarray = np.asarray

    def counted(value: Any, *args: Any, **kwargs: Any) -> Any:
        conversions.append(value)
        return asarray(value, *args, **kwargs)

    monkeypatch.setattr(np, "asarray", counted)
    outputs = model.predict(items)
    monkeypatch.undo()
    assert len(conversions) == 1
    assert [o["label"] for o in outputs] == [[label] for label in y[:64]]
    assert all(type(o["probabilities"][0][0]) is float for o in outputs)


def test_items_that_do_not_stack_run_one_by_one_naming_the_item_at_fault(
    examples: Repository, find: Find, load: Load
) -> None:
    model = load(find(examples, "demo/iris:1"))
    good = {"features": [[5.1, 3.5, 1.4, 0.2]]}
    with pytest.raises(ValueError, match=r"item 2: input 'features' has shape \[1, 3\]"):
        model.predict([good, good, {"features": [[1, 2, 3]]}])
    with pytest.raises(ValueError, match=r"item 1: input 'features' has shape \[0\]"):
        model.predict([good, {"features": []}])
    # A mixed batch of numpy and JSON items still predicts, each its own rows.
    mixed = model.predict([good, {"features": np.array([[6.7, 3.0, 5.2, 2.3]] * 2)}])
    assert [len(o["label"]) for o in mixed] == [1, 2]


def test_missing_or_misshapen_inputs_are_named(
    examples: Repository, find: Find, load: Load
) -> None:
    model = load(find(examples, "demo/iris:1"))
    with pytest.raises(ValueError, match="item 1: input 'features' is missing"):
        model.predict([{"features": [[1, 2, 3, 4]]}, {"other": 1}])
    with pytest.raises(ValueError, match=r"has shape \[1, 3\]; the model expects \[-1, 4\]"):
        model.predict([{"features": [[1, 2, 3]]}])
    with pytest.raises(ValueError, match="is not a float32 tensor"):
        model.predict([{"features": [["a", "b", "c", "d"]]}])


def test_dtypes_and_dynamic_dims_map_to_json_schema(make_version: MakeVersion, load: Load) -> None:
    data = graph_bytes(
        [
            helper.make_node("Identity", ["ids"], ["ids_out"]),
            helper.make_node("Identity", ["mask"], ["mask_out"]),
            helper.make_node("Identity", ["word"], ["word_out"]),
        ],
        [
            helper.make_tensor_value_info("ids", TensorProto.INT32, ["batch", "seq"]),
            helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", "seq"]),
            helper.make_tensor_value_info("word", TensorProto.STRING, ["batch"]),
        ],
        [
            helper.make_tensor_value_info("ids_out", TensorProto.INT32, ["batch", "seq"]),
            helper.make_tensor_value_info("mask_out", TensorProto.BOOL, ["batch", "seq"]),
            helper.make_tensor_value_info("word_out", TensorProto.STRING, ["batch"]),
        ],
    )
    model = load(onnx_version(make_version, data))
    props = model.signature.input_schema["properties"]
    assert props["ids"]["x-shape"] == [-1, -1]
    assert props["ids"]["items"]["items"] == {
        "type": "integer",
        "minimum": -(2**31),
        "maximum": 2**31 - 1,
    }
    assert (props["mask"]["x-dtype"], props["mask"]["items"]["items"]) == (
        "bool",
        {"type": "boolean"},
    )
    assert (props["word"]["x-dtype"], props["word"]["items"]) == ("string", {"type": "string"})
    same = [  # equal sequence lengths: stacked
        {"ids": [[1, 2]], "mask": [[True, False]], "word": ["a"]},
        {"ids": [[3, 4], [5, 6]], "mask": [[False, True], [True, True]], "word": ["b", "c"]},
    ]
    ragged = [same[0], {"ids": [[7, 8, 9]], "mask": [[True, True, True]], "word": ["d"]}]
    for batch in (same, ragged):  # ragged sequence lengths: one run per item
        outputs = model.predict(batch)
        assert outputs == [
            {"ids_out": i["ids"], "mask_out": i["mask"], "word_out": i["word"]} for i in batch
        ]


def test_an_input_takes_no_empty_list_where_numpy_would_lose_a_dimension(
    make_version: MakeVersion, load: Load
) -> None:
    """[] is shape [0] to numpy: at the batch axis or with arrays inside, no tensor of the
    graph's rank. An innermost dynamic axis may be empty ([[]] is shape [1, 0]); an output's
    may always be (a detector that found nothing)."""
    data = graph_bytes(
        [helper.make_node("Identity", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", "dim"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", "dim"])],
    )
    model = load(onnx_version(make_version, data))
    x = model.signature.input_schema["properties"]["x"]
    y = model.signature.output_schema["properties"]["y"]

    assert (x["minItems"], x["items"]["minItems"]) == (1, 1)
    assert "minItems" not in x["items"]["items"]
    assert "minItems" not in y
    assert "minItems" not in y["items"]
    validator = InputValidator(model.signature.input_schema)
    assert validator.validate({"x": [[[]]]}) == {"x": [[[]]]}
    for empty, where in (([], "x"), ([[]], r"x\.0")):
        with pytest.raises(InvalidInput, match=rf"input\.{where}: List should have at least 1"):
            validator.validate({"x": empty})


def test_fixed_batch_dimension_runs_item_by_item(make_version: MakeVersion, load: Load) -> None:
    data = graph_bytes(
        [helper.make_node("Neg", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [2, 3])],
    )
    model = load(onnx_version(make_version, data))
    x = model.signature.input_schema["properties"]["x"]
    assert (x["minItems"], x["maxItems"], x["x-shape"], x["x-dtype"]) == (2, 2, [2, 3], "float64")
    items = [{"x": [[1, 2, 3], [4, 5, 6]]}, {"x": [[0, 0, 0], [1, 1, 1]]}]
    assert model.predict(items) == [
        {"y": [[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]]},
        {"y": [[0.0, 0.0, 0.0], [-1.0, -1.0, -1.0]]},
    ]


def test_outputs_not_aligned_with_the_batch_fall_back_to_single_runs(
    make_version: MakeVersion, load: Load
) -> None:
    # The output's first dim is dynamic but twice the rows: a stacked run cannot be split.
    data = graph_bytes(
        [helper.make_node("Concat", ["x", "x"], ["y"], axis=0)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["twice_n", 1])],
    )
    model = load(onnx_version(make_version, data))
    outputs = model.predict([{"x": [[1]]}, {"x": [[2], [3]]}])
    assert outputs == [{"y": [[1.0], [1.0]]}, {"y": [[2.0], [3.0], [2.0], [3.0]]}]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"intra_op_threads": 0}, "options.intra_op_threads"),
        ({"intra_op_threads": "2"}, "options.intra_op_threads"),
        ({"intra_op_threads": True}, "options.intra_op_threads"),
        ({"threads": 2}, "options.threads"),
    ],
)
def test_invalid_options_are_manifest_errors(
    make_version: MakeVersion, options: dict[str, Any], field: str
) -> None:
    version = onnx_version(make_version, b"unused", **options)
    with pytest.raises(ManifestError) as caught:
        get_runtime("onnx").check(version)
    assert caught.value.field == field
    assert caught.value.path == version.path / "foretell.yaml"


def test_thread_option_is_accepted(
    examples: Repository, find: Find, make_version: MakeVersion
) -> None:
    data = (find(examples, "demo/iris:1").path / "model.onnx").read_bytes()
    model = get_runtime("onnx").load(onnx_version(make_version, data, intra_op_threads=2))
    assert model.predict([{"features": [[5.1, 3.5, 1.4, 0.2]]}])[0]["label"] == [0]


def test_unreadable_artifact_fails_to_load(make_version: MakeVersion) -> None:
    version = onnx_version(make_version, b"this is not a protobuf")
    with pytest.raises(ModelLoadFailed, match=r"onnxruntime cannot load 'model\.onnx'") as caught:
        get_runtime("onnx").load(version)
    assert caught.value.model == "tmp/model:1"


def test_non_tensor_outputs_are_refused_with_the_fix(make_version: MakeVersion) -> None:
    seq = helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [1]))
    data = graph_bytes(
        [helper.make_node("SequenceConstruct", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_value_info("y", seq)],
    )
    with pytest.raises(ModelLoadFailed, match=r"output 'y' .* type seq\(tensor\(float\)\)"):
        get_runtime("onnx").load(onnx_version(make_version, data))
