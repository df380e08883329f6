"""`foretell serve --default-model`: repeatable, and FORETELL_DEFAULT_MODEL comma-separated;
either way the server's Settings list every name, in order."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import foretell.cli.main as cli_main
import foretell.cli.serve as cli_serve
from foretell.config import Settings


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """The Settings `serve` would start a server with; none is started."""
    seen: list[Settings] = []
    monkeypatch.setattr(cli_serve, "serve_forever", seen.append)
    return seen


def serve(tmp_path: Path, *args: str, env: dict[str, str | None] | None = None) -> None:
    environment: dict[str, str | None] = {"FORETELL_DEFAULT_MODEL": None, **(env or {})}
    command = ["serve", str(tmp_path), "--data-dir", str(tmp_path / "data"), *args]
    result = CliRunner().invoke(cli_main.app, command, env=environment)
    assert result.exit_code == 0, result.output


def test_the_flag_is_repeatable(tmp_path: Path, started: list[Settings]) -> None:
    serve(tmp_path, "--default-model", "demo/sentiment", "--default-model", "demo/sentiment-text")

    assert started[0].default_model == ["demo/sentiment", "demo/sentiment-text"]


def test_the_environment_takes_a_comma_separated_list(
    tmp_path: Path, started: list[Settings]
) -> None:
    serve(tmp_path, env={"FORETELL_DEFAULT_MODEL": "demo/sentiment,demo/sentiment-text"})

    assert started[0].default_model == ["demo/sentiment", "demo/sentiment-text"]


def test_one_name_or_none_as_before(tmp_path: Path, started: list[Settings]) -> None:
    serve(tmp_path, "--default-model", "demo/sentiment")
    serve(tmp_path)

    assert [s.default_model for s in started] == [["demo/sentiment"], []]
