"""Which changes under the repository make its watcher read it again: files and folders of a
version (<owner>/<name>/<n>/…), and owner or model folders coming or going; never a push's
hidden staging folder, its lock, caches, or a file beside the owners."""

from pathlib import Path

import pytest
from watchfiles import Change

from foretell.service.watcher import RepositoryWatcher


async def nothing() -> None:
    return None


@pytest.mark.parametrize(
    ("change", "path", "relevant"),
    [
        (Change.added, "acme/churn/3", True),
        (Change.added, "acme/churn/3/foretell.yaml", True),
        (Change.modified, "acme/churn/3/model.onnx", True),
        (Change.deleted, "acme/churn/3", True),
        (Change.deleted, "acme/churn", True),  # a model's folder, every version with it
        (Change.added, "acme", True),
        (Change.modified, "README.md", False),  # a file beside the owners
        (Change.modified, "acme/churn", False),  # a folder's own times
        (Change.added, "acme/churn/.push-1a2b/foretell.yaml", False),  # a push being unpacked
        (Change.modified, "acme/churn/.lock", False),  # the push's lock
        (Change.added, "acme/churn/3/__pycache__/predict.cpython-311.pyc", False),
        (Change.added, "_cache/x", False),
        (Change.added, "../elsewhere/acme/churn/1", False),
    ],
)
def test_only_version_folders_matter(
    tmp_path: Path, change: Change, path: str, relevant: bool
) -> None:
    watcher = RepositoryWatcher(tmp_path, nothing)
    assert watcher._relevant(change, str(tmp_path / path)) is relevant
