"""The `foretell` command's entry: the CLI imported with the collector paused, then restored."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from foretell.cli import entry

# What a fresh interpreter sees while `foretell` imports its CLI, and after.
PROBE = """
import gc, sys
import foretell.cli.entry as entry

seen = []
class Probe:
    def find_spec(self, name, path=None, target=None):
        if name == "foretell.cli.main":
            seen.append(gc.isenabled())
        return None

sys.meta_path.insert(0, Probe())
sys.argv = ["foretell", "--help"]
try:
    entry.main()
except SystemExit as exit:
    print(seen, gc.isenabled(), exit.code)
"""


def test_the_cli_is_imported_with_the_collector_paused_then_resumed() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip().splitlines()[-1] == "[False] True 0"


def test_a_collector_that_was_off_stays_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["foretell", "--help"])
    gc.disable()
    try:
        with pytest.raises(SystemExit) as exit:
            entry.main()
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert exit.value.code == 0


def test_python_dash_m_foretell_cli_is_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "foretell.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "Serve the models in a folder" in done.stdout
