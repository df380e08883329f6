"""cli.target: which URL and key a command uses, in which order, and what it says about them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from foretell.cli import target
from foretell.cli.target import DEFAULT_URL, TargetError, register, resolve, unregister


@pytest.fixture(autouse=True)
def nothing_chosen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(target, "chosen", target.Chosen())
    monkeypatch.delenv("FORETELL_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # an empty folder: no ./.foretell


def write_config(text: str) -> Path:
    path = target.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_without_anything_the_default_url_and_no_key() -> None:
    found = resolve(None, "", None, "")
    assert (found.url, found.url_source, found.key) == (DEFAULT_URL, "the default", None)
    assert found.key_source.startswith("no key (none readable at ")
    assert "no server on port 8080 registered its data directory" in found.key_source


def test_the_config_file_is_under_xdg_config_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "/somewhere")
    assert target.config_path() == Path("/somewhere/foretell/config.toml")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert target.config_path() == Path.home() / ".config" / "foretell" / "config.toml"


def test_the_default_table_then_a_named_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "k").write_text("ft_from_file\n")
    path = write_config(
        '[default]\nurl = "http://a:1"\nkey = "ft_a"\n'
        f'[profiles.b]\nurl = "http://b:2"\nkey_file = "{tmp_path / "k"}"\n'
    )
    found = resolve(None, "", None, "")
    assert (found.url, found.key) == ("http://a:1", "ft_a")
    assert found.url_source == found.key_source == f"[default] in {path}"

    monkeypatch.setenv("FORETELL_PROFILE", "b")
    found = resolve(None, "", None, "")
    assert (found.url, found.key) == ("http://b:2", "ft_from_file")
    assert found.key_source == f"{tmp_path / 'k'} (profile 'b' in {path})"

    target.chosen.profile = "default-less"
    with pytest.raises(TargetError, match=r"profile 'default-less' is not in .*its profiles: b"):
        resolve(None, "", None, "")


def test_a_flag_or_variable_wins_over_the_profile() -> None:
    write_config('[default]\nurl = "http://a:1"\nkey = "ft_a"\n')
    found = resolve("http://c:3", "FORETELL_URL", "ft_c", "--key")
    assert (found.url, found.url_source, found.key, found.key_source) == (
        "http://c:3",
        "FORETELL_URL",
        "ft_c",
        "--key",
    )


def test_a_profile_s_key_never_goes_to_another_server_than_its_own() -> None:
    write_config('[default]\nurl = "http://a:1"\nkey = "ft_a"\n')
    elsewhere = resolve("http://evil:9", "--url", None, "")
    assert (elsewhere.url, elsewhere.key) == ("http://evil:9", None)
    own = resolve("http://a:1", "--url", None, "")
    assert (own.url, own.key) == ("http://a:1", "ft_a")
    write_config('[default]\nkey = "ft_any"\n')  # a key bound to no URL: for whichever
    assert resolve("http://c:3", "--url", None, "").key == "ft_any"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[default\n", "cannot read"),
        ("[default]\nurl = 3\n", r"url of \[default\] in .* must be a string"),
        ('[profiles]\nx = "y"\n', "profile 'x' in .* is not a table"),
    ],
)
def test_a_broken_config_says_where_and_why(
    monkeypatch: pytest.MonkeyPatch, text: str, problem: str
) -> None:
    write_config(text)
    if "profile 'x'" in problem:
        monkeypatch.setenv("FORETELL_PROFILE", "x")
    with pytest.raises(TargetError, match=problem):
        resolve(None, "", None, "")


def test_a_named_profile_without_a_config_file_is_an_error() -> None:
    target.chosen.profile = "prod"
    with pytest.raises(TargetError, match="profile 'prod' is not defined: there is no "):
        resolve(None, "", None, "")


def test_the_local_admin_key_never_goes_to_another_machine(tmp_path: Path) -> None:
    (tmp_path / ".foretell").mkdir()
    (tmp_path / ".foretell" / "admin-key").write_text("ft_local\n")
    found = resolve("https://models.example.com", "--url", None, "")
    assert found.key is None
    assert found.key_source == "no key (the local admin key is not sent to models.example.com)"
    assert resolve("http://localhost:8080", "--url", None, "").key == "ft_local"


def test_a_registered_server_s_data_directory_wins_over_this_folder(tmp_path: Path) -> None:
    (tmp_path / ".foretell").mkdir()
    (tmp_path / ".foretell" / "admin-key").write_text("ft_this_folder\n")
    data = tmp_path / "elsewhere"
    data.mkdir()
    (data / "admin-key").write_text("ft_the_servers\n")
    note = register(9123, data)
    assert note is not None
    try:
        found = resolve("http://127.0.0.1:9123", "--url", None, "")
        assert found.key == "ft_the_servers"
        assert found.key_source == (
            f"{data / 'admin-key'}, the data directory of the server on port 9123"
        )
        # Another port: that server registered nothing, so this folder's, and it says so.
        other = resolve("http://127.0.0.1:9124", "--url", None, "")
        assert other.key == "ft_this_folder"
        assert "in the current folder" in other.key_source
        assert other.guessed  # said on stderr when used (cli.remote.target)
        assert not found.guessed
    finally:
        unregister(note)
    assert not note.exists()


def test_a_dead_server_s_note_is_ignored(tmp_path: Path) -> None:
    note = register(9125, tmp_path)
    assert note is not None
    note.write_text(note.read_text().replace(str(os.getpid()), "999999999"))
    assert target.registered_data_dir(9125) is None
    unregister(note)  # not this process's any more: left alone
    assert note.exists()


def test_data_dir_given_is_where_the_key_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "admin-key").write_text("ft_given\n")
    monkeypatch.setenv("FORETELL_DATA_DIR", str(tmp_path))
    found = resolve("http://[::1]:8080", "--url", None, "")
    assert (found.key, found.key_source) == ("ft_given", str(tmp_path / "admin-key"))
