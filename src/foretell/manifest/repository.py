"""Scan a model repository laid out as `<owner>/<name>/<version_number>/foretell.yaml`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from foretell.domain.model import NAME_PATTERN, ModelRef
from foretell.errors import ManifestError
from foretell.manifest.manifest import REQUIREMENTS_FILE, Manifest, load_manifest

_NAME = re.compile(rf"^{NAME_PATTERN}$")
_VERSION = re.compile(r"^[1-9][0-9]{0,8}$")


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable version on disk: where it lives and what its manifest says."""

    owner: str
    name: str
    number: int
    path: Path
    manifest: Manifest

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.owner, self.name, self.number)

    @property
    def requirements(self) -> Path | None:
        """Its requirements.txt, if it asks for its own Python environment."""
        path = self.path / REQUIREMENTS_FILE
        return path if path.is_file() else None


@dataclass(frozen=True, slots=True)
class BrokenVersion:
    """A version folder that could not be read; it is listed, and fails its predictions."""

    owner: str
    name: str
    number: int
    path: Path
    error: ManifestError


@dataclass(slots=True)
class Repository:
    root: Path
    versions: list[ModelVersion] = field(default_factory=list)
    broken: list[BrokenVersion] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def scan_repository(root: Path) -> Repository:
    """Read every version folder; a bad one is recorded as broken and never stops the others."""
    repo = Repository(root=root)
    if not root.is_dir():
        repo.skipped.append(f"{root}: model repository does not exist or is not a directory")
        return repo
    for owner_dir in _subdirs(root):
        for name_dir in _subdirs(owner_dir):
            for version_dir in _subdirs(name_dir):
                _scan_version(repo, owner_dir.name, name_dir.name, version_dir)
    return repo


def _scan_version(repo: Repository, owner: str, name: str, folder: Path) -> None:
    if not (_NAME.match(owner) and _NAME.match(name)):
        repo.skipped.append(f"{folder}: '{owner}/{name}' is not a valid lowercase owner/name")
        return
    if not _VERSION.match(folder.name):
        repo.skipped.append(f"{folder}: version folder must be a number 1, 2, …")
        return
    number = int(folder.name)
    try:
        manifest = load_manifest(folder)
    except ManifestError as exc:
        repo.broken.append(BrokenVersion(owner, name, number, folder, exc))
        return
    repo.versions.append(ModelVersion(owner, name, number, folder.resolve(), manifest))


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
