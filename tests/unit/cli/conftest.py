"""Every CLI test on its own: no config.toml, no registered local server, no profile or URL
from the machine's environment."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _own_config_and_registry(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path_factory.mktemp("cli-home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home / "run"))
    for name in ("FORETELL_PROFILE", "FORETELL_URL", "FORETELL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
