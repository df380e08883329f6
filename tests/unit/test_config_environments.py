"""Where model environments are built: environments_dir, else data_dir/environments."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from foretell.config import Settings


def test_they_live_under_the_data_dir_unless_told() -> None:
    assert Settings(data_dir=Path("/srv/foretell")).environments == Path(
        "/srv/foretell/environments"
    )
    assert Settings(environments_dir=Path("/cache/envs")).environments == Path("/cache/envs")


def test_the_environment_names_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORETELL_ENVIRONMENTS_DIR", "/cache/envs")
    monkeypatch.setenv("FORETELL_BUILD_TIMEOUT_S", "60")
    settings = Settings()
    assert settings.environments == Path("/cache/envs")
    assert settings.build_timeout_s == 60.0


def test_a_build_timeout_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="build_timeout_s"):
        Settings(build_timeout_s=0)
