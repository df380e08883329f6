"""The transformers runtime's text-generation on demo/tiny-gpt2 (random weights, built locally):
each input streams text pieces whose concatenation is the decoding of every generated token,
the limits on max_new_tokens and the prompt are the caller's errors naming them, and a
byte-level token that splits a character is never sent half-decoded."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from foretell.domain import OutputStream
from foretell.errors import InvalidInput, ManifestError
from foretell.manifest import ModelVersion, Repository, scan_repository
from foretell.manifest.schema import InputValidator
from foretell.runtimes.base import Stream
from foretell.runtimes.hf import RUNTIME
from foretell.runtimes.hf_generate import GenerationModel, generate, pieces

Find = Callable[[Repository, str], ModelVersion]


@pytest.fixture(scope="module")
def gpt2(examples: Repository, find: Find) -> GenerationModel:
    model = RUNTIME.load(find(examples, "demo/tiny-gpt2:1"))
    assert isinstance(model, GenerationModel)
    return model


def decode(model: GenerationModel) -> Callable[[list[int]], str]:
    def run(ids: list[int]) -> str:
        text: str = model.tokenizer.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        return text

    return run


def test_a_batch_of_two_prompts_streams_each_its_own_generated_text(
    gpt2: GenerationModel,
) -> None:
    validator = InputValidator(gpt2.signature.input_schema)
    asked = [{"prompt": "once upon a time", "max_new_tokens": 5}, {"prompt": "the model"}]
    first, second = gpt2.predict([validator.validate(item) for item in asked])
    for stream, item, count in ((first, asked[0], 5), (second, asked[1], 16)):
        assert isinstance(stream, Stream)
        assert stream.mode is OutputStream.TEXT
        sent = list(stream.items)
        assert sent
        assert all(isinstance(piece, str) and piece for piece in sent)
        ids = gpt2.tokenizer(item["prompt"])["input_ids"]
        tokens = list(generate(gpt2.model, ids, count, gpt2.tokenizer.eos_token_id))
        assert len(tokens) <= count
        assert "".join(sent) == decode(gpt2)(tokens)


def test_pieces_put_together_are_the_whole_decoding_even_across_split_characters(
    gpt2: GenerationModel,
) -> None:
    # Byte-level tokens: 'é' and '😀' are two and four byte tokens, so a piece must wait for
    # a character's last byte; random sequences also hold bytes that never make one.
    tokenizer = gpt2.tokenizer
    text_ids = tokenizer("héllo 😀 once upon a time, ünïcode 日本", add_special_tokens=False)
    samples = [list(text_ids["input_ids"])]
    rng = random.Random(0)
    samples += [[rng.randrange(len(tokenizer)) for _ in range(40)] for _ in range(200)]
    run = decode(gpt2)
    for ids in samples:
        sent = list(pieces(iter(ids), run))
        assert "".join(sent) == run(ids)
        assert all(not piece.startswith("\ufffd") or "\ufffd" in run(ids) for piece in sent)
    emoji = list(samples[0])
    assert "😀" in "".join(pieces(iter(emoji), run))
    assert all("\ufffd" not in piece for piece in pieces(iter(emoji), run))


def test_a_piece_is_sent_as_soon_as_its_token_decodes_not_at_the_end() -> None:
    taken: list[int] = []

    def tokens() -> Iterator[int]:
        for token in range(1, 100):
            taken.append(token)
            yield token

    stream = pieces(tokens(), lambda ids: " ".join(map(str, ids)))
    assert next(stream) == "1"
    assert taken == [1]
    assert next(stream) == " 2"
    assert taken == [1, 2]


def test_more_new_tokens_than_the_manifest_allows_is_refused_naming_the_field_and_limit(
    gpt2: GenerationModel,
) -> None:
    validator = InputValidator(gpt2.signature.input_schema)
    with pytest.raises(InvalidInput) as refused:
        validator.validate({"prompt": "once", "max_new_tokens": 65})
    (error,) = refused.value.errors
    assert error["loc"] == ["input", "max_new_tokens"]
    assert error["ctx"] == {"le": 64}
    # Without the schema's check (a caller of predict itself) the runtime says the same.
    (answer,) = gpt2.predict([{"prompt": "once", "max_new_tokens": 65}])
    assert isinstance(answer, InvalidInput)
    (error,) = answer.errors
    assert error["loc"] == ["input", "max_new_tokens"]
    assert error["ctx"] == {"limit": 64}
    assert "options.max_new_tokens" in error["msg"]


def test_a_prompt_that_leaves_no_room_is_refused_alone_in_its_batch(
    gpt2: GenerationModel,
) -> None:
    long = "once upon a time " * 40  # well over the 128 positions of the model
    refused, kept = gpt2.predict(
        [{"prompt": long, "max_new_tokens": 4}, {"prompt": "once", "max_new_tokens": 4}]
    )
    assert isinstance(refused, InvalidInput)
    (error,) = refused.errors
    assert error["loc"] == ["input", "prompt"]
    assert error["ctx"] == {"limit": 128}
    assert "128 tokens" in error["msg"]
    assert isinstance(kept, Stream)
    assert "".join(kept.items)


def test_max_new_tokens_is_an_option_of_text_generation_only(tmp_path: Path) -> None:
    folder = tmp_path / "acme" / "m" / "1"
    (folder / "model").mkdir(parents=True)
    options: dict[str, Any] = {"task": "fill-mask", "max_new_tokens": 8}
    manifest = {"runtime": "transformers", "artifact": "model", "options": options}
    (folder / "foretell.yaml").write_text(yaml.safe_dump(manifest))
    (version,) = scan_repository(tmp_path).versions
    with pytest.raises(ManifestError) as refused:
        RUNTIME.check(version)
    assert refused.value.field == "options.max_new_tokens"
    assert "text-generation" in refused.value.reason


def test_sampling_with_a_seed_gives_its_text_again_and_temperature_0_is_greedy(
    gpt2: GenerationModel,
) -> None:
    validator = InputValidator(gpt2.signature.input_schema)

    def text(**asked: Any) -> str:
        (stream,) = gpt2.predict([validator.validate({"prompt": "once upon", **asked})])
        assert isinstance(stream, Stream)
        return "".join(stream.items)

    greedy = text(max_new_tokens=24)
    assert text(max_new_tokens=24, temperature=0, seed=3) == greedy
    sampled = {text(max_new_tokens=24, temperature=2, seed=seed) for seed in range(3)}
    assert len(sampled) == 3  # random weights, flattened: three seeds, three texts
    assert text(max_new_tokens=24, temperature=2, seed=1) in sampled
    with pytest.raises(InvalidInput) as refused:
        validator.validate({"prompt": "once", "temperature": 6})
    assert refused.value.errors[0]["loc"] == ["input", "temperature"]
