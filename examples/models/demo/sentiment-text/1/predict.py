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

VOCABULARY: dict[str, int] = {
    "[UNK]": 100,
    "[CLS]": 101,
    "[SEP]": 102,
    "love": 2293,
    "great": 2307,
    "good": 2204,
    "like": 2066,
    "excellent": 6581,
    "hate": 5223,
    "bad": 2919,
    "terrible": 6659,
    "awful": 9643,
    "worst": 5409,
    "i": 1045,
    "this": 2023,
    "what": 2054,
    "is": 2003,
    "product": 4031,
    "it": 2009,
    "the": 1996,
    "a": 1037,
    "was": 2001,
    "!": 999,
    ".": 1012,
    ",": 1010,
    "?": 1029,
}
TOKEN = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


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
