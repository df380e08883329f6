"""Which server a command talks to and with which key, and where each came from.

The URL: --url, else FORETELL_URL, else the profile's (config.toml), else http://127.0.0.1:8080.
The key: --key, else FORETELL_API_KEY, else the profile's key or key_file (unless the URL is another
than the profile's: a key is never sent to a server it was not given for), else, for a server on
this machine only, the admin key in that server's data directory: the one --data-dir or
FORETELL_DATA_DIR names, else the one `foretell serve` registered for that port (see `register`),
else ./.foretell. Each carries its source, so that a refusal can say which key went where.

Light on purpose (no pydantic, no httpx): it is imported by every command, `--help` included.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_DATA_DIR = ".foretell"
ADMIN_KEY_FILE = "admin-key"  # as auth.keys writes it; not imported: auth pulls in the store
_GUESSED = "registered its data directory"


class TargetError(Exception):
    """A profile or key file that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Target:
    """A server's URL and the key for it, each with where it came from (for messages)."""

    url: str
    url_source: str
    key: str | None
    key_source: str
    guessed: bool = False  # the key is ./.foretell's: no server said where its data is


@dataclass
class Chosen:
    """What the `foretell` command itself was given (before the subcommand): set per run."""

    profile: str | None = None
    data_dir: Path | None = None


chosen = Chosen()


def config_path() -> Path:
    """$XDG_CONFIG_HOME/foretell/config.toml (~/.config/foretell/config.toml)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "foretell" / "config.toml"


def _profile(name: str | None) -> tuple[dict[str, Any], str]:
    """The named profile's table (or [default] when none is named) and how to call it."""
    path = config_path()
    try:
        with path.open("rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        if name is not None:
            raise TargetError(f"profile '{name}' is not defined: there is no {path}") from None
        return {}, ""
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TargetError(f"cannot read {path}: {exc}") from None
    if name is None:
        table = config.get("default", {})
        label = f"[default] in {path}"
    else:
        profiles = config.get("profiles", {})
        if not isinstance(profiles, dict) or name not in profiles:
            known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) else ""
            raise TargetError(
                f"profile '{name}' is not in {path} (its profiles: {known or 'none'}); "
                f"add a [profiles.{name}] table with url and key or key_file"
            )
        table = profiles[name]
        label = f"profile '{name}' in {path}"
    if not isinstance(table, dict):
        raise TargetError(f"{label} is not a table of url, key and key_file")
    for field in ("url", "key", "key_file"):
        if field in table and not isinstance(table[field], str):
            raise TargetError(f"{field} of {label} must be a string")
    return table, label


def resolve(url: str | None, url_source: str, key: str | None, key_source: str) -> Target:
    """The target from what the command was given (`url`/`key`: None when neither the option
    nor its environment variable was), the profile, and the local server's data directory."""
    profile = chosen.profile or os.environ.get("FORETELL_PROFILE") or None
    table, label = _profile(profile)
    if url is None:
        if "url" in table:
            url, url_source = table["url"], label
        else:
            url, url_source = DEFAULT_URL, "the default"
    if key is not None:
        return Target(url, url_source, key, key_source)
    if table.get("url", url) != url:
        # --url or FORETELL_URL names another server than the profile's: its key is for its
        # own server, and is never sent elsewhere.
        table = {}
    if "key" in table:
        return Target(url, url_source, table["key"], label)
    if "key_file" in table:
        path = Path(table["key_file"]).expanduser()
        try:
            return Target(url, url_source, path.read_text().strip(), f"{path} ({label})")
        except OSError as exc:
            raise TargetError(f"cannot read key_file {path} of {label}: {exc}") from None
    found, where = local_admin_key(url)
    return Target(url, url_source, found, where, guessed=where.endswith(_GUESSED))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def local_admin_key(url: str) -> tuple[str | None, str]:
    """The admin key of the server at `url` if it runs on this machine and this user can read
    it, and where it was looked for. A server elsewhere never gets it: it is not asked for."""
    parts = urlsplit(url)
    if not is_loopback(parts.hostname or ""):
        return None, f"no key (the local admin key is not sent to {parts.hostname or url})"
    explicit = chosen.data_dir or os.environ.get("FORETELL_DATA_DIR")
    if explicit:
        return _read_key(Path(explicit), "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    registered = registered_data_dir(port)
    if registered is not None:
        return _read_key(registered, f", the data directory of the server on port {port}")
    return _read_key(
        Path(DEFAULT_DATA_DIR), f", in the current folder: no server on port {port} {_GUESSED}"
    )


def _read_key(data_dir: Path, why: str) -> tuple[str | None, str]:
    path = (data_dir / ADMIN_KEY_FILE).absolute()
    try:
        return path.read_text().strip() or None, f"{path}{why}"
    except OSError:
        return None, f"no key (none readable at {path}{why})"


# The servers this user runs, by port: a file each, so that a command in any folder finds the
# admin key of the server it talks to rather than whatever ./.foretell holds.


def _registry() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("XDG_STATE_HOME")
    root = Path(base) if base else Path.home() / ".local" / "state"
    return root / "foretell" / "servers"


def register(port: int, data_dir: Path) -> Path | None:
    """Note that this process serves `port` from `data_dir`; the note's path (None if it could
    not be written: the commands then look in ./.foretell, as before)."""
    note = _registry() / f"{port}.json"
    try:
        note.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = {"pid": os.getpid(), "port": port, "data_dir": str(data_dir.absolute())}
        note.write_text(json.dumps(body))
    except OSError:
        return None
    return note


def unregister(note: Path) -> None:
    """Remove `note` if it is still this process's (a later server may have taken the port)."""
    try:
        if json.loads(note.read_text()).get("pid") == os.getpid():
            note.unlink()
    except (OSError, ValueError):
        pass


def registered_data_dir(port: int) -> Path | None:
    """The data directory of the live server registered on `port`, if any."""
    try:
        body = json.loads((_registry() / f"{port}.json").read_text())
        pid, data_dir = int(body["pid"]), Path(body["data_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # a server that died without removing its note
    except PermissionError:
        pass  # alive, another user's: its key file will not be readable anyway
    return data_dir
