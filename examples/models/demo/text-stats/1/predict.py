"""Text statistics: word and character counts and the most frequent words."""

import re
from collections import Counter

from pydantic import BaseModel

from foretell.sdk import Input, Predictor

WORD = re.compile(r"\w+(?:'\w+)*")


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
