"""The `transformers` runtime: a Hugging Face pipeline over a local model folder.

Strictly local: nothing is ever downloaded (HF_HUB_OFFLINE, local_files_only); a folder that
lacks a file says which. `artifact` is the folder (config, weights, tokenizer), relative to the
version's folder or absolute.

Options (`options:` in foretell.yaml):
    task: fill-mask | text-classification | token-classification | feature-extraction |
        zero-shot-classification | text-generation (streams its tokens: see hf_generate)
    top_k: the default number of answers (fill-mask 5, text-classification 1); a request's
        `top_k` overrides it.
    device: cpu | cuda | cuda:N | auto (default: cuda when present).
    threads: torch threads per replica (default: the CPUs this process may use divided by
        `replicas`, at least 1): more threads than cores in all makes torch many times slower.
    max_length: tokens a text is cut to (default: sentence-transformers' `max_seq_length` when
        the folder has sentence_bert_config.json, else the tokenizer's `model_max_length`, else
        the model's `max_position_embeddings`); never more than the model has positions for.
    max_new_tokens: text-generation only: the most tokens a request may ask for (default 256).
Texts longer than `max_length` tokens are truncated, never refused for their length (as
sentence-transformers and the pipelines' `truncation=True` do); a fill-mask text whose mask
token falls past the cut is refused, since nothing would be left to fill. An empty text is
refused, and so is a fill-mask text without the mask token: all three are the caller's error.
So is a zero-shot label whose hypothesis ("This example is {label}.") takes over half of
`max_length`, since the text must fit beside it.

Outputs keep the pipeline's JSON: fill-mask `{"predictions": [{score, sequence, token,
token_str}, …]}` (seed 000's `model_response`), text-classification `{"predictions": [{label,
score}, …]}`, token-classification `{"entities": [...]}`, feature-extraction `{"embedding": [...]}`
(mean-pooled over the tokens and L2-normalised: a sentence embedding), zero-shot
`{"labels": [...], "scores": [...]}`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from foretell.errors import InvalidInput, ManifestError, ModelLoadFailed
from foretell.manifest import ModelVersion, Signature
from foretell.manifest.manifest import MANIFEST_FILE, artifact_path
from foretell.runtimes import hf_generate

TASKS = (
    "fill-mask",
    "text-classification",
    "token-classification",
    "feature-extraction",
    "zero-shot-classification",
    "text-generation",
)
_DEFAULT_TOP_K = {"fill-mask": 5, "text-classification": 1}


def _folder(version: ModelVersion) -> Path:
    artifact = version.manifest.artifact
    assert artifact is not None  # the manifest check requires it for this runtime
    located = artifact_path(version.path, artifact)
    if located is None:
        raise ModelLoadFailed(str(version.ref), f"'{artifact}': no installed package ships that")
    return located


def _task(version: ModelVersion) -> str:
    task = version.manifest.options.get("task")
    if task not in TASKS:
        raise ManifestError(
            version.path / MANIFEST_FILE, "options.task", f"{task!r}: one of {', '.join(TASKS)}"
        )
    return str(task)


def _text(mask: str | None) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string", "minLength": 1, "description": "the text"}
    if mask is not None:
        node["pattern"] = f"^.*{re.escape(mask)}.*$"
        node["description"] = f"the text, with {mask} where a word is to be filled in"
    return node


def _signature(task: str, top_k: int | None, mask: str | None) -> Signature:
    properties: dict[str, Any] = {"text": _text(mask if task == "fill-mask" else None)}
    if top_k is not None:
        properties["top_k"] = {"type": "integer", "minimum": 1, "maximum": 100, "default": top_k}
    if task == "zero-shot-classification":
        properties["candidate_labels"] = {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 1,
        }
        properties["multi_label"] = {"type": "boolean", "default": False}
    required = ["text", *(["candidate_labels"] if task == "zero-shot-classification" else [])]
    return Signature(
        input_schema={"type": "object", "properties": properties, "required": required},
        output_schema={"type": "object"},
    )


class PipelineModel:
    def __init__(
        self, pipe: Any, task: str, top_k: int | None, mask: str | None, max_length: int
    ) -> None:
        self._pipe = pipe
        self._task = task
        self._mask = mask
        self.max_length = max_length
        self.signature = _signature(task, top_k, mask)

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        # One forward pass per group of items that ask for the same parameters.
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, item in enumerate(batch):
            groups.setdefault(_params_key(item), []).append(index)
        outputs: list[Any] = [None] * len(batch)
        for indices in groups.values():
            items = [batch[i] for i in indices]
            for i, output in zip(indices, self._run(items), strict=True):
                outputs[i] = output
        return outputs

    def _run(self, items: list[Mapping[str, Any]]) -> list[Any]:
        texts = [str(item["text"]) for item in items]
        first = items[0]
        task = self._task
        if task == "feature-extraction":
            return [{"embedding": e} for e in self._embed(texts)]
        if task == "zero-shot-classification":
            self._check_labels(first["candidate_labels"])
            results = self._call(
                texts,
                candidate_labels=first["candidate_labels"],
                multi_label=first.get("multi_label", False),
            )
            return [{"labels": r["labels"], "scores": r["scores"]} for r in results]
        if task == "token-classification":
            return [{"entities": _plain(r)} for r in self._call(texts)]
        if task == "fill-mask":
            return self._fill(texts, first["top_k"])
        results = self._call(texts, top_k=first["top_k"], truncation=True)
        return [{"predictions": _plain(_top(r))} for r in results]

    def _call(self, texts: list[str], **params: Any) -> list[Any]:
        """The pipeline on `texts` in one batch: one result per text, in order. One text goes
        as a string, since pipelines answer a list of one in varying shapes."""
        raw = self._pipe(texts[0] if len(texts) == 1 else texts, batch_size=len(texts), **params)
        return [raw] if len(texts) == 1 else list(raw)

    def _fill(self, texts: list[str], top_k: int) -> list[Any]:
        """The texts whose mask survives the cut in one pass; the others refused in their place,
        so one bad text neither fails its batch nor makes the worker rerun it input by input."""
        refused = self._refusals(texts)
        kept = [t for i, t in enumerate(texts) if i not in refused]
        answers: list[Any] = []
        if kept:
            results = self._call(kept, top_k=top_k, tokenizer_kwargs={"truncation": True})
            answers = [{"predictions": _plain(_top(r), _FILL_MASK_KEYS)} for r in results]
        filled = iter(answers)
        return [refused[i] if i in refused else next(filled) for i in range(len(texts))]

    def _check_labels(self, labels: Sequence[str]) -> None:
        """Each label becomes a hypothesis read beside the text, which alone is cut to fit: a
        hypothesis may take at most half of the model's length, leaving the text the rest."""
        tokenizer, most = self._pipe.tokenizer, self.max_length // 2
        for index, label in enumerate(labels):
            hypothesis = _HYPOTHESIS.format(label)
            length = len(
                tokenizer(hypothesis, add_special_tokens=False, verbose=False)["input_ids"]
            )
            if length > most:
                message = (
                    f"the hypothesis for this label ({_HYPOTHESIS!r}) is {length} tokens long; "
                    f"this model reads {self.max_length}, so a label may take at most {most}"
                )
                loc = ["input", "candidate_labels", index]
                error = {"type": "label_too_long", "loc": loc, "msg": message, "input": label}
                raise InvalidInput([{**error, "ctx": {"limit": most}}])

    def _refusals(self, texts: list[str]) -> dict[int, InvalidInput]:
        """A mask cut off with the end of a long text leaves nothing to fill: the caller's
        error, by the index of each such text."""
        tokenizer = self._pipe.tokenizer
        kept = tokenizer(texts, truncation=True)["input_ids"]
        refused = {}
        for index, (text, ids) in enumerate(zip(texts, kept, strict=True)):
            if tokenizer.mask_token_id not in ids:
                length = len(tokenizer(text, verbose=False)["input_ids"])
                message = (
                    f"the text is {length} tokens long and this model reads at most "
                    f"{self.max_length}: its {self._mask} falls past the cut, so nothing is left "
                    "to fill; move it earlier or shorten the text"
                )
                error = {"type": "mask_past_limit", "loc": ["input", "text"], "msg": message}
                ctx = {"limit": self.max_length}
                refused[index] = InvalidInput([{**error, "input": text, "ctx": ctx}])
        return refused

    def _embed(self, texts: list[str]) -> list[list[float]]:
        import torch

        tokenizer, model = self._pipe.tokenizer, self._pipe.model
        encoded = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        encoded = {k: v.to(model.device) for k, v in encoded.items()}
        with torch.inference_mode():
            hidden = model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.cpu().tolist()


def _params_key(item: Mapping[str, Any]) -> tuple[Any, ...]:
    labels = item.get("candidate_labels")
    return (item.get("top_k"), tuple(labels) if labels else None, item.get("multi_label"))


def _top(result: Any) -> list[Any]:
    """fill-mask and text-classification answer a dict when top_k is 1: always a list here."""
    return result if isinstance(result, list) else [result]


# The zero-shot pipeline's default template: each candidate label becomes this hypothesis.
_HYPOTHESIS = "This example is {}."
# Seed 000's order of a fill-mask answer's fields.
_FILL_MASK_KEYS = ("score", "sequence", "token", "token_str")


def _plain(value: Any, keys: tuple[str, ...] | None = None) -> Any:
    """numpy scalars (a token-classification score) as JSON numbers; dicts in `keys` order."""
    if isinstance(value, list):
        return [_plain(v, keys) for v in value]
    if isinstance(value, dict):
        order = [k for k in keys or () if k in value] + [k for k in value if k not in (keys or ())]
        return {k: _plain(value[k]) for k in order}
    if hasattr(value, "item"):
        return value.item()
    return value


class TransformersRuntime:
    name = "transformers"
    in_process = False  # tokenisers and user-supplied models stay out of the server process

    def check(self, version: ModelVersion) -> None:
        task = _task(version)
        options = _options(version)
        if "max_new_tokens" in options and task != "text-generation":
            raise ManifestError(
                version.path / MANIFEST_FILE,
                "options.max_new_tokens",
                f"only for task text-generation, not {task}",
            )
        if not version.manifest.artifact:
            raise ManifestError(
                version.path / MANIFEST_FILE, "artifact", "required: the model's folder"
            )

    def load(self, version: ModelVersion) -> PipelineModel | hf_generate.GenerationModel:
        self.check(version)
        task = _task(version)
        options = _options(version)
        folder = _folder(version)
        ref = str(version.ref)
        if not (folder / "config.json").is_file():
            raise ModelLoadFailed(ref, f"model folder '{folder}' has no config.json")
        os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the hub, whatever the model says
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from transformers import pipeline

        make: Any = pipeline  # its overloads take a literal task; ours is checked above

        threads = options.get("threads") or _fair_threads(version.manifest.replicas.max)
        torch.set_num_threads(threads)
        device = options.get("device", "auto")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadFailed(
                ref,
                f"options.device is '{device}' but torch {torch.__version__} finds no CUDA "
                "device; use 'auto' to run on the CPU where there is none",
            )
        try:
            pipe = make(
                task,
                model=str(folder),
                tokenizer=str(folder),
                device=device,  # offline (HF_HUB_OFFLINE above): local files only
            )
        except OSError as exc:  # a missing weights or tokenizer file: transformers names it
            raise ModelLoadFailed(ref, f"cannot load '{folder}': {exc}") from exc
        # Every pipeline and our own tokenizer calls cut at model_max_length: make it the limit.
        max_length = _max_length(ref, folder, pipe, options.get("max_length"))
        pipe.tokenizer.model_max_length = max_length
        if task == "text-generation":
            limit = options.get("max_new_tokens", hf_generate.DEFAULT_LIMIT)
            return hf_generate.GenerationModel(pipe.model, pipe.tokenizer, max_length, limit)
        top_k = options.get("top_k", _DEFAULT_TOP_K.get(task))
        mask = getattr(pipe.tokenizer, "mask_token", None)
        return PipelineModel(pipe, task, top_k, mask, max_length)


# What each option must be: (test, what the error says it must be).
_OPTION_RULES: dict[str, tuple[Any, str]] = {
    "task": (lambda v: v in TASKS, f"one of {', '.join(TASKS)}"),
    "top_k": (lambda v: _whole(v, 1, 100), "an integer from 1 to 100"),
    "device": (
        lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None,
        "auto, cpu, cuda or cuda:N",
    ),
    "threads": (lambda v: _whole(v, 1, 1024), "an integer from 1 to 1024"),
    "max_length": (lambda v: _whole(v, 1, 1_000_000), "an integer from 1 to 1000000"),
    "max_new_tokens": (lambda v: _whole(v, 1, 100_000), "an integer from 1 to 100000"),
}


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _options(version: ModelVersion) -> Mapping[str, Any]:
    options = version.manifest.options
    for key, value in options.items():
        rule = _OPTION_RULES.get(key)
        if rule is None:
            raise ManifestError(
                version.path / MANIFEST_FILE,
                f"options.{key}",
                f"unknown option for runtime 'transformers'; it understands: "
                f"{', '.join(_OPTION_RULES)}",
            )
        test, expected = rule
        if not test(value):
            raise ManifestError(
                version.path / MANIFEST_FILE, f"options.{key}", f"must be {expected}, not {value!r}"
            )
    return options


def _fair_threads(replicas: int) -> int:
    """This replica's share of the CPUs the process may run on (a container's, not the host's;
    the host's where the platform cannot say, as on macOS)."""
    affinity = getattr(os, "sched_getaffinity", None)
    cpus = len(affinity(0)) if affinity is not None else os.cpu_count() or 1
    return max(1, cpus // replicas)


# A tokenizer saved without a limit reports a huge sentinel (transformers' VERY_LARGE_INTEGER,
# int(1e30)); anything this large is no limit.
_UNSET_LIMIT = 10**18
# Models whose position ids start after the padding index: they read that many fewer tokens
# than max_position_embeddings says (RoBERTa's 514 positions hold 512 tokens).
_OFFSET_POSITIONS = frozenset(
    {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "mpnet"}
)


def _max_length(ref: str, folder: Path, pipe: Any, asked: int | None) -> int:
    """The tokens a text is cut to: the manifest's `max_length`, else what the model was built
    for; never more than the model has positions for."""
    config = pipe.model.config
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and config.model_type in _OFFSET_POSITIONS:
        positions -= (config.pad_token_id or 0) + 1
    if asked is not None:
        if isinstance(positions, int) and asked > positions:
            raise ModelLoadFailed(
                ref,
                f"options.max_length is {asked} but the model reads at most {positions} tokens "
                "(its position embeddings); use a smaller one",
            )
        return asked
    limit = None
    sentence_config = folder / "sentence_bert_config.json"
    if sentence_config.is_file():  # sentence-transformers cuts here, below the tokenizer's limit
        found = json.loads(sentence_config.read_text()).get("max_seq_length")
        limit = found if isinstance(found, int) and found > 0 else None
    tokenizer_limit = pipe.tokenizer.model_max_length
    if limit is None and isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < _UNSET_LIMIT:
        limit = tokenizer_limit
    if isinstance(positions, int):
        limit = positions if limit is None else min(limit, positions)
    if limit is None:
        raise ModelLoadFailed(
            ref, "cannot tell how many tokens the model reads; set options.max_length"
        )
    return limit


RUNTIME = TransformersRuntime()
