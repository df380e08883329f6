"""`foretell push`'s local half: what it packs, and the first curl it prints."""

from __future__ import annotations

import json
import shlex
import tarfile
from pathlib import Path

from foretell.cli.push import example, first_curl, packed


def test_packing_leaves_out_version_control_caches_and_venvs(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    for path in (
        "foretell.yaml",
        "predict.py",
        "data/weights.bin",
        ".git/HEAD",
        "__pycache__/predict.cpython-311.pyc",
        "data/__pycache__/x.pyc",
        ".venv/bin/python",
    ):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(path)
    (folder / "linked.py").symlink_to(folder / "predict.py")

    with packed(folder) as archive, tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == [
        "data",
        "data/weights.bin",
        "foretell.yaml",
        "linked.py",
        "predict.py",
    ]
    assert members["linked.py"].isreg()  # the server takes no links: the file itself is sent
    assert not archive.exists()  # removed once sent


def test_the_example_input_fills_what_the_schema_requires() -> None:
    schema = {
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "n": {"type": "integer", "default": 1},
            "scale": {"type": "number", "minimum": 0.5},
            "mode": {"enum": ["fast", "slow"]},
            "rows": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        },
        "required": ["text", "scale"],
    }
    assert example(schema) == {"text": "hello", "scale": 0.5, "mode": "fast", "rows": [[1.0]]}
    assert example(None) == {}


def test_the_first_curl_is_one_shell_command_with_the_key_from_the_environment() -> None:
    curl = first_curl("http://127.0.0.1:8080/", "acme/echo:2", {"properties": {"t": {}}})
    words = shlex.split(curl)
    assert words[:4] == ["curl", "-s", "-X", "POST"]
    assert "http://127.0.0.1:8080/v1/predictions" in words
    assert "Authorization: Bearer $FORETELL_API_KEY" in words
    body = json.loads(words[words.index("-d") + 1])
    assert body == {"model": "acme/echo:2", "input": {"t": None}}
