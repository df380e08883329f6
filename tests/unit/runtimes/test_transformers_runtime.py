"""The transformers runtime on tiny BERT models built here (random weights, no download): each
task answers in the pipeline's shape, batches mix parameters correctly, and a folder that lacks
a file is a load error naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from foretell.errors import ModelLoadFailed
from foretell.manifest import scan_repository
from foretell.manifest.manifest import artifact_path
from foretell.manifest.schema import InputValidator
from foretell.runtimes.hf import RUNTIME

WORDS = ["steve", "jobs", "is", "the", "founder", "of", "apple", "good", "bad", "paris"]


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


def load(tmp_path: Path, kind: str, task: str, **config: Any) -> tuple[Any, InputValidator]:
    version_dir = tmp_path / "acme" / "m" / "1"
    tiny(kind, version_dir / "model", **config)
    manifest = {"runtime": "transformers", "artifact": "model", "options": {"task": task}}
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
    nli = {"id2label": {0: "entailment", 1: "neutral", 2: "contradiction"}}
    nli["label2id"] = {v: k for k, v in nli["id2label"].items()}  # type: ignore[assignment]
    zero, validator = load(
        tmp_path / "zs", "BertForSequenceClassification", "zero-shot-classification", **nli
    )
    (out,) = zero.predict(
        [validator.validate({"text": "paris", "candidate_labels": ["good", "bad"]})]
    )
    assert sorted(out["labels"]) == ["bad", "good"]
    assert sum(out["scores"]) == pytest.approx(1.0, abs=1e-5)


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
    texts = ["the cat sits on the mat", "a dog plays in the park", "stocks fell sharply"]
    ours = np.array([o["embedding"] for o in model.predict([{"text": t} for t in texts])])
    assert version.manifest.artifact is not None
    folder = artifact_path(version.path, version.manifest.artifact)
    reference = SentenceTransformer(str(folder)).encode(texts, normalize_embeddings=True)
    assert ours.shape == (3, 384)
    assert np.allclose(ours, reference, atol=1e-5)
    # and the space means something: the two scenes are closer than a scene and the market
    assert float(ours[0] @ ours[1]) > float(ours[0] @ ours[2])
