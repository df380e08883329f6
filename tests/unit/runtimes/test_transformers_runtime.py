"""The transformers runtime on tiny BERT models built here (random weights, no download): each
task answers in the pipeline's shape, batches mix parameters correctly, and a folder that lacks
a file is a load error naming it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from foretell.errors import InvalidInput, ManifestError, ModelLoadFailed
from foretell.manifest import scan_repository
from foretell.manifest.manifest import artifact_path
from foretell.manifest.schema import InputValidator
from foretell.runtimes.hf import RUNTIME
from foretell.workers.child import run_batch

WORDS = ["steve", "jobs", "is", "the", "founder", "of", "apple", "good", "bad", "paris"]

# The tiny models read at most 32 tokens (max_position_embeddings): this is 20 * 6 words.
LONG = " ".join(["the founder of apple is good"] * 20)
NLI = {"id2label": {0: "entailment", 1: "neutral", 2: "contradiction"}}
NLI["label2id"] = {v: k for k, v in NLI["id2label"].items()}  # type: ignore[assignment]
EVERY_TASK = [
    ("BertModel", "feature-extraction", {}, {}),
    ("BertForSequenceClassification", "text-classification", {}, {}),
    ("BertForTokenClassification", "token-classification", {}, {}),
    ("BertForMaskedLM", "fill-mask", {}, {}),
    ("BertForSequenceClassification", "zero-shot-classification", NLI, {"candidate_labels": ["a"]}),
]


def tiny(kind: str, folder: Path, **config: Any) -> None:
    import torch
    import transformers
    from transformers import BertConfig, BertTokenizerFast

    folder.mkdir(parents=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    settings = {
        "vocab_size": len(WORDS) + 5,
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 32,
        **config,
    }
    torch.manual_seed(0)
    getattr(transformers, kind)(BertConfig(**settings)).save_pretrained(folder)
    BertTokenizerFast(str(vocab), do_lower_case=True).save_pretrained(folder)


def load(
    tmp_path: Path, kind: str, task: str, options: dict[str, Any] | None = None, **config: Any
) -> tuple[Any, InputValidator]:
    version_dir = tmp_path / "acme" / "m" / "1"
    tiny(kind, version_dir / "model", **config)
    manifest = {
        "runtime": "transformers",
        "artifact": "model",
        "options": {"task": task, **(options or {})},
    }
    (version_dir / "foretell.yaml").write_text(yaml.safe_dump(manifest))
    (version,) = scan_repository(tmp_path).versions
    model = RUNTIME.load(version)
    return model, InputValidator(model.signature.input_schema)


def test_embeddings_are_unit_vectors_one_per_text(tmp_path: Path) -> None:
    model, validator = load(tmp_path, "BertModel", "feature-extraction")
    items = [validator.validate({"text": t}) for t in ("steve jobs", "the founder of apple is")]
    outputs = model.predict(items)
    assert [len(o["embedding"]) for o in outputs] == [16, 16]
    for o in outputs:
        assert sum(v * v for v in o["embedding"]) == pytest.approx(1.0, abs=1e-5)
    assert outputs[0]["embedding"] != outputs[1]["embedding"]


def test_text_classification_answers_labels_with_a_per_request_top_k(tmp_path: Path) -> None:
    labels = {
        "id2label": {0: "NEGATIVE", 1: "POSITIVE"},
        "label2id": {"NEGATIVE": 0, "POSITIVE": 1},
    }
    model, validator = load(
        tmp_path, "BertForSequenceClassification", "text-classification", **labels
    )
    one, two = model.predict(
        [validator.validate({"text": "good"}), validator.validate({"text": "bad", "top_k": 2})]
    )
    assert [p["label"] for p in one["predictions"]] in (["NEGATIVE"], ["POSITIVE"])
    assert sorted(p["label"] for p in two["predictions"]) == ["NEGATIVE", "POSITIVE"]


def test_token_classification_and_zero_shot_keep_their_pipeline_shapes(tmp_path: Path) -> None:
    entities, validator = load(
        tmp_path / "ner", "BertForTokenClassification", "token-classification", num_labels=3
    )
    (out,) = entities.predict([validator.validate({"text": "steve jobs of apple"})])
    assert isinstance(out["entities"], list)
    zero, validator = load(
        tmp_path / "zs", "BertForSequenceClassification", "zero-shot-classification", **NLI
    )
    (out,) = zero.predict(
        [validator.validate({"text": "paris", "candidate_labels": ["good", "bad"]})]
    )
    assert sorted(out["labels"]) == ["bad", "good"]
    assert sum(out["scores"]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(("kind", "task", "config", "extra"), EVERY_TASK)
def test_a_text_longer_than_the_model_reads_is_cut_not_refused(
    tmp_path: Path, kind: str, task: str, config: dict[str, Any], extra: dict[str, Any]
) -> None:
    model, validator = load(tmp_path, kind, task, **config)
    assert model.max_length == 32  # the tokenizer was saved without a limit: the model's
    mask = "[MASK] " if task == "fill-mask" else ""
    long, short = model.predict(
        [
            validator.validate({"text": mask + LONG, **extra}),
            validator.validate({"text": mask + "paris", **extra}),
        ]
    )
    assert long.keys() == short.keys()


def test_the_cut_is_where_sentence_transformers_or_the_manifest_puts_it(tmp_path: Path) -> None:
    model, _ = load(tmp_path / "cut", "BertModel", "feature-extraction", {"max_length": 8})
    words = "steve jobs is the founder of apple good bad paris"
    # [CLS], 6 words, [SEP]: what is past the sixth word changes nothing
    (long, prefix) = model.predict([{"text": words}, {"text": " ".join(words.split()[:6])}])
    assert long == prefix
    version_dir = tmp_path / "st" / "acme" / "m" / "1"
    tiny("BertModel", version_dir / "model")
    (version_dir / "model" / "sentence_bert_config.json").write_text('{"max_seq_length": 10}')
    manifest = {"runtime": "transformers", "artifact": "model", "options": {"task": "fill-mask"}}
    (version_dir / "foretell.yaml").write_text(yaml.safe_dump(manifest))
    (version,) = scan_repository(tmp_path / "st").versions
    assert RUNTIME.load(version).max_length == 10


def test_a_mask_past_the_cut_fails_only_its_own_input_as_the_callers_error(
    tmp_path: Path,
) -> None:
    model, validator = load(tmp_path, "BertForMaskedLM", "fill-mask")
    late = validator.validate({"text": f"{LONG} [MASK]"})
    early = validator.validate({"text": "the [MASK] of apple"})
    # refused in its place: the others of the batch run in the same pass, not one by one
    answered, refusal = model.predict([early, late])
    assert len(answered["predictions"]) == 5
    assert isinstance(refusal, InvalidInput)
    (error,) = refusal.errors
    assert error["loc"] == ["input", "text"]
    assert error["ctx"] == {"limit": 32}
    assert "123 tokens long and this model reads at most 32: its [MASK] falls past" in error["msg"]
    # the worker turns it into the caller's error, alone or in a batch
    good, bad = run_batch(model, [early, late])
    (alone,) = run_batch(model, [late])
    assert len(good.output["predictions"]) == 5
    assert good.refused is None
    for outcome in (bad, alone):
        assert outcome.output is None
        assert outcome.refused == refusal.errors
        assert outcome.error == refusal.message


def test_a_zero_shot_label_too_long_to_sit_beside_the_text_is_the_callers_error(
    tmp_path: Path,
) -> None:
    model, validator = load(
        tmp_path, "BertForSequenceClassification", "zero-shot-classification", **NLI
    )
    long_label = " ".join(["apple"] * 20)  # "This example is" + 20 words + "." > 32 // 2
    (fine,) = model.predict([validator.validate({"text": LONG, "candidate_labels": ["good"]})])
    assert fine["labels"] == ["good"]
    with pytest.raises(InvalidInput) as raised:
        model.predict([validator.validate({"text": "x", "candidate_labels": ["good", long_label]})])
    (error,) = raised.value.errors
    assert error["loc"] == ["input", "candidate_labels", 1]
    assert error["msg"] == (
        "the hypothesis for this label ('This example is {}.') is 24 tokens long; "
        "this model reads 32, so a label may take at most 16"
    )


def test_a_max_length_beyond_the_models_positions_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(
        ModelLoadFailed,
        match=r"options\.max_length is 64 but the model reads "
        r"at most 32 tokens",
    ):
        load(tmp_path, "BertModel", "feature-extraction", {"max_length": 64})


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"threads": 0}, "options.threads", "must be an integer from 1 to 1024, not 0"),
        ({"top_k": "5"}, "options.top_k", "must be an integer from 1 to 100, not '5'"),
        ({"device": "gpu"}, "options.device", "must be auto, cpu, cuda or cuda:N, not 'gpu'"),
        ({"max_length": True}, "options.max_length", "not True"),
        ({"batch": 4}, "options.batch", "unknown option for runtime 'transformers'"),
    ],
)
def test_a_bad_option_is_a_manifest_error_naming_it(
    tmp_path: Path, options: dict[str, Any], field: str, says: str
) -> None:
    version_dir = tmp_path / "acme" / "m" / "1"
    (version_dir / "model").mkdir(parents=True)
    manifest = {"runtime": "transformers", "artifact": "model", "options": {"task": "fill-mask"}}
    manifest["options"].update(options)  # type: ignore[attr-defined]
    (version_dir / "foretell.yaml").write_text(yaml.safe_dump(manifest))
    (version,) = scan_repository(tmp_path).versions
    with pytest.raises(ManifestError) as raised:
        RUNTIME.check(version)
    assert raised.value.field == field
    assert says in str(raised.value)


def test_each_replica_takes_its_share_of_the_cpus_unless_told(tmp_path: Path) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        cpus = len(os.sched_getaffinity(0))
        load(tmp_path / "a", "BertModel", "feature-extraction", {"threads": 3})
        assert torch.get_num_threads() == 3
        version_dir = tmp_path / "b" / "acme" / "m" / "1"
        tiny("BertModel", version_dir / "model")
        manifest = {
            "runtime": "transformers",
            "artifact": "model",
            "replicas": 64,
            "options": {"task": "feature-extraction"},
        }
        (version_dir / "foretell.yaml").write_text(yaml.safe_dump(manifest))
        (version,) = scan_repository(tmp_path / "b").versions
        RUNTIME.load(version)
        assert torch.get_num_threads() == max(1, cpus // 64)
    finally:
        torch.set_num_threads(before)


def test_asking_for_cuda_where_torch_finds_none_is_a_load_error_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelLoadFailed, match=r"options\.device is 'cuda:0' but torch .* no CUDA"):
        load(tmp_path, "BertModel", "feature-extraction", {"device": "cuda:0"})


def test_a_folder_without_its_config_is_a_load_error_naming_it(tmp_path: Path) -> None:
    version_dir = tmp_path / "acme" / "m" / "1"
    (version_dir / "model").mkdir(parents=True)
    manifest = {"runtime": "transformers", "artifact": "model", "options": {"task": "fill-mask"}}
    (version_dir / "foretell.yaml").write_text(yaml.safe_dump(manifest))
    (version,) = scan_repository(tmp_path).versions
    with pytest.raises(ModelLoadFailed, match=r"has no config\.json"):
        RUNTIME.load(version)


def test_demo_minilm_gives_the_same_embeddings_as_sentence_transformers() -> None:
    """The real all-MiniLM-L6-v2 weights, from the package that ships them: our pooling must
    match sentence-transformers' own, to the float."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    repository = Path(__file__).resolve().parents[3] / "examples" / "models"
    (version,) = [v for v in scan_repository(repository).versions if v.name == "minilm"]
    model = RUNTIME.load(version)
    # the last is cut at sentence-transformers' 256 tokens, well below the tokenizer's 512
    long = " ".join(["the market closed lower after a long day of trading"] * 40)
    texts = ["the cat sits on the mat", "a dog plays in the park", "stocks fell sharply", long]
    ours = np.array([o["embedding"] for o in model.predict([{"text": t} for t in texts])])
    assert version.manifest.artifact is not None
    folder = artifact_path(version.path, version.manifest.artifact)
    reference = SentenceTransformer(str(folder)).encode(texts, normalize_embeddings=True)
    assert ours.shape == (4, 384)
    assert np.allclose(ours, reference, atol=1e-5)
    # and the space means something: the two scenes are closer than a scene and the market
    assert float(ours[0] @ ours[1]) > float(ours[0] @ ours[2])
