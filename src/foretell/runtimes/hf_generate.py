"""The transformers runtime's `text-generation`: tokens generated one at a time, each streamed
as the text it adds while the next one is computed.

Inputs: `prompt` (the text to continue), `max_new_tokens` (default 16, at most the manifest's
`options.max_new_tokens`, itself 256 unless set), `temperature` (0, the default: greedy, the
most likely token each step, so a prompt always gets the same text; above 0: sampled from the
model's probabilities sharpened or flattened by it) and `seed` (a sampled text's, to have it
again; random when absent). Generation stops early at the model's end-of-text token.
The output is `Iterator[str]` as Cog draws it: text pieces whose concatenation is the whole
generated text.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from foretell.domain import OutputStream
from foretell.errors import InvalidInput
from foretell.manifest import Signature
from foretell.runtimes.base import Stream

DEFAULT_NEW_TOKENS = 16
DEFAULT_LIMIT = 256
MAX_TEMPERATURE = 5
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes at most a signed 64-bit integer
# What a decoder yields for bytes that are not (yet) a whole UTF-8 character: a byte-level
# token may end halfway through one, which the next token completes.
_REPLACEMENT = "\ufffd"


def signature(limit: int) -> Signature:
    """`prompt` and `max_new_tokens` in; generated text out, as an iterator of its pieces."""
    default = min(DEFAULT_NEW_TOKENS, limit)
    properties: dict[str, Any] = {
        "prompt": {"type": "string", "minLength": 1, "description": "the text to continue"},
        "max_new_tokens": {
            "type": "integer",
            "minimum": 1,
            "maximum": limit,
            "default": default,
            "description": f"how many tokens to generate at most (this model allows {limit})",
        },
        "temperature": {
            "type": "number",
            "minimum": 0,
            "maximum": MAX_TEMPERATURE,
            "default": 0,
            "description": "0: the most likely token each time (greedy); higher: sampled, "
            "more varied",
        },
        "seed": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_SEED,
            "description": "the sampling's seed, for the same text again (random if absent)",
        },
    }
    return Signature(
        input_schema={"type": "object", "properties": properties, "required": ["prompt"]},
        output_schema={
            "type": "array",
            "items": {"type": "string"},
            "x-cog-array-type": "iterator",
            "x-cog-array-display": "concatenate",
        },
    )


class GenerationModel:
    """A causal language model and its tokenizer: each input's answer is a Stream of text."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int, limit: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self._limit = limit
        self.signature = signature(limit)

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        # One generator per input: the replica advances a batch's streams in turn, so each
        # caller sees its tokens as they come rather than after the longest input's.
        return [self._stream(item) for item in batch]

    def _stream(self, item: Mapping[str, Any]) -> Stream | InvalidInput:
        prompt = str(item["prompt"])
        count = item.get("max_new_tokens", min(DEFAULT_NEW_TOKENS, self._limit))
        if count > self._limit:  # the schema says so too; this holds without its validation
            return _refused(
                "max_new_tokens",
                count,
                f"at most {self._limit} new tokens for this model (options.max_new_tokens)",
                self._limit,
            )
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if not ids:
            return _refused("prompt", prompt, "the prompt has no tokens to continue", 1)
        if len(ids) + count > self.max_length:
            message = (
                f"the prompt is {len(ids)} tokens and max_new_tokens {count}: this model reads "
                f"at most {self.max_length} tokens in all; shorten the prompt or ask for fewer"
            )
            return _refused("prompt", prompt, message, self.max_length)
        eos = self.tokenizer.eos_token_id
        temperature = float(item.get("temperature", 0))
        seed = item.get("seed")
        seed = random.randrange(MAX_SEED) if seed is None else seed
        tokens = generate(self.model, ids, count, eos, temperature, seed)
        return Stream(pieces(tokens, self._decode), OutputStream.TEXT)

    def _decode(self, ids: list[int]) -> str:
        # No clean-up of spaces before punctuation: it would rewrite text already sent.
        text: str = self.tokenizer.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        return text


def _refused(field: str, value: Any, message: str, limit: int) -> InvalidInput:
    error = {"type": "value_error", "loc": ["input", field], "msg": message, "input": value}
    return InvalidInput([{**error, "ctx": {"limit": limit}}])


def generate(
    model: Any,
    prompt: list[int],
    count: int,
    eos: int | None,
    temperature: float = 0.0,
    seed: int = 0,
) -> Iterator[int]:
    """Up to `count` token ids after `prompt`, each the most likely next one (temperature 0)
    or drawn by `seed`'s generator, computed one step at a time from the model's cache of what
    it has read (transformers' `cache`, formerly `past_key_values`)."""
    import torch

    drawn = None
    if temperature > 0:  # its own generator: torch's global one is shared with everything
        drawn = torch.Generator(device=model.device)
        drawn.manual_seed(seed)
    cache = None
    step = torch.tensor([prompt], device=model.device)
    for _ in range(count):
        # Inference mode per step, not around the loop: a generator suspended inside it would
        # leave it on for whatever its caller runs between two tokens.
        with torch.inference_mode():
            out = model(input_ids=step, cache=cache, use_cache=True)
            logits = out.logits[0, -1]
            if drawn is None:
                token = int(logits.argmax())
            else:
                odds = torch.softmax(logits.float() / temperature, dim=-1)
                token = int(torch.multinomial(odds, 1, generator=drawn))
        cache = out.cache
        if token == eos:
            return
        yield token
        step = torch.tensor([[token]], device=model.device)


def pieces(tokens: Iterator[int], decode: Callable[[list[int]], str]) -> Iterator[str]:
    """The text each token adds, so that the pieces put together are `decode` of all tokens.

    A token's own decoding is not its share of the text (byte-level tokens split characters;
    word tokens gain a space only beside another), so the whole is decoded each time and the new
    end sent, as transformers' TextIteratorStreamer does. An end still in U+FFFD may be a
    character whose last bytes are yet to come: it is held back until they do, or the end."""
    ids: list[int] = []
    sent = 0
    for token in tokens:
        ids.append(token)
        text = decode(ids)
        settled = len(text.rstrip(_REPLACEMENT))
        if settled > sent:
            yield text[sent:settled]
            sent = settled
    if ids:
        text = decode(ids)
        if len(text) > sent:
            yield text[sent:]
