"""Fixtures for runtime tests: the example and fixture repositories, and throwaway model folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from foretell.manifest import ModelVersion, Repository, load_manifest, scan_repository
from foretell.runtimes import LoadedModel, get_runtime

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "models"
FIXTURES = ROOT / "tests" / "fixtures" / "models"


@pytest.fixture(scope="session")
def examples() -> Repository:
    return scan_repository(EXAMPLES)


@pytest.fixture(scope="session")
def fixtures() -> Repository:
    return scan_repository(FIXTURES)


@pytest.fixture(scope="session")
def find() -> Callable[[Repository, str], ModelVersion]:
    """The version `owner/name:number` of a repository."""

    def find(repo: Repository, ref: str) -> ModelVersion:
        matches = [v for v in repo.versions if str(v.ref) == ref]
        assert matches, f"{ref} not in {repo.root}: {[str(v.ref) for v in repo.versions]}"
        return matches[0]

    return find


@pytest.fixture(scope="session")
def load() -> Callable[[ModelVersion], LoadedModel]:
    """Check and load a version in-process, as a replica does."""

    def load(version: ModelVersion) -> LoadedModel:
        runtime = get_runtime(version.manifest.runtime)
        runtime.check(version)
        return runtime.load(version)

    return load


@pytest.fixture
def make_version(tmp_path: Path) -> Callable[..., ModelVersion]:
    """Writes a version folder (`files` plus foretell.yaml from `manifest`) and reads it back."""

    def make(manifest: dict[str, Any], files: dict[str, str | bytes] | None = None) -> ModelVersion:
        folder = tmp_path / "tmp" / "model" / "1"
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in (files or {}).items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        (folder / "foretell.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
        return ModelVersion("tmp", "model", 1, folder, load_manifest(folder))

    return make
