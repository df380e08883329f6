"""Settings read from flags and FORETELL_* variables: GPUX's default models as a list."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from foretell.config import Settings


@pytest.mark.parametrize(
    ("given", "models"),
    [
        (None, []),
        ("demo/sentiment", ["demo/sentiment"]),  # one name, as before
        ("demo/sentiment,demo/sentiment-text", ["demo/sentiment", "demo/sentiment-text"]),
        (["demo/sentiment", "demo/sentiment-text"], ["demo/sentiment", "demo/sentiment-text"]),
        ([" a/b , c/d", "a/b", ""], ["a/b", "c/d"]),  # in order, each once, blanks dropped
    ],
)
def test_default_models_are_one_name_a_comma_list_or_a_list(given: Any, models: list[str]) -> None:
    assert Settings(default_model=given).default_model == models


def test_the_environment_gives_default_models_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORETELL_DEFAULT_MODEL", "demo/sentiment, demo/sentiment-text")

    assert Settings().default_model == ["demo/sentiment", "demo/sentiment-text"]


def test_a_default_model_that_is_not_a_name_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"default_model\.0"):
        Settings(default_model=[3])
