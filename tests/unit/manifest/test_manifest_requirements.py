"""A version folder with a requirements.txt has its own environment: a manifest asking for
thread replicas or Ray placement with it is a ManifestError naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from foretell.errors import ManifestError
from foretell.manifest import load_manifest


def folder(tmp_path: Path, extra: str, *, requirements: bool = True) -> Path:
    (tmp_path / "predict.py").write_text("")
    (tmp_path / "foretell.yaml").write_text(
        f"runtime: python\npredictor: predict.py:Model\n{extra}\n"
    )
    if requirements:
        (tmp_path / "requirements.txt").write_text("foretell-probe-pkg==2.0.1\n")
    return tmp_path


def test_thread_isolation_with_requirements_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as refused:
        load_manifest(folder(tmp_path, "isolation: thread"))
    assert refused.value.field == "isolation"
    assert "requirements.txt" in str(refused.value)
    assert "needs a process" in str(refused.value)


def test_ray_placement_with_requirements_is_not_supported_yet(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as refused:
        load_manifest(folder(tmp_path, "placement: ray"))
    assert refused.value.field == "placement"
    assert "not supported on Ray yet" in str(refused.value)


@pytest.mark.parametrize("extra", ["isolation: process", "isolation: auto", "placement: local"])
def test_process_replicas_with_requirements_load(tmp_path: Path, extra: str) -> None:
    load_manifest(folder(tmp_path, extra))


def test_thread_isolation_without_requirements_loads(tmp_path: Path) -> None:
    assert (
        load_manifest(folder(tmp_path, "isolation: thread", requirements=False)).isolation
        == "thread"
    )
