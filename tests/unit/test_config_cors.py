"""cors_origins: off by default; origins from the repeated flag or FORETELL_CORS_ORIGINS, each
checked to be an origin."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from foretell.config import Settings


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORETELL_CORS_ORIGINS", raising=False)

    assert Settings().cors_origins == []


def test_the_environment_gives_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORETELL_CORS_ORIGINS", "http://localhost:8080, HTTP://127.0.0.1:8080,")

    assert Settings().cors_origins == ["http://localhost:8080", "http://127.0.0.1:8080"]


def test_a_list_and_any_origin() -> None:
    assert Settings(cors_origins=["https://a.example", "*"]).cors_origins == [
        "https://a.example",
        "*",
    ]


@pytest.mark.parametrize(
    "origin", ["http://localhost:8080/", "localhost:8080", "http://a.example/app", "http://"]
)
def test_what_is_no_origin_is_refused_naming_it(origin: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(cors_origins=[origin])

    message = str(refused.value)
    assert f"cors_origins '{origin}' is not an origin" in message
    assert "scheme://host[:port]" in message
