"""The `files` setting: a directory or s3://bucket/prefix, and nothing else, said at startup."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from foretell.config import Settings
from foretell.files.blobs import LocalBlobs
from foretell.files.service import blobs_for


@pytest.mark.parametrize("where", ["s3://bucket", "s3://bucket/some/prefix", "/srv/files", "rel"])
def test_a_directory_or_a_bucket(where: str) -> None:
    assert Settings(files=where).files == where


@pytest.mark.parametrize("where", ["s3://", "s3:///prefix", "gs://bucket/x", "http://host/x"])
def test_anything_else_is_refused_naming_both_forms(where: str) -> None:
    with pytest.raises(ValidationError, match="neither a directory nor s3://bucket/prefix"):
        Settings(files=where)


def test_by_default_files_live_under_the_data_directory(tmp_path: Path) -> None:
    blobs = blobs_for(Settings(data_dir=tmp_path))
    assert isinstance(blobs, LocalBlobs)
    assert blobs.root == tmp_path / "files"
    assert blobs.staging.is_dir()
