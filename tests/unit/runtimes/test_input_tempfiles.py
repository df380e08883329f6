"""An input's files as temporary files: each FileData written to its own directory with its
suffix kept, the model given paths, everything removed when the prediction ends however it
ends; a string left in a file's place is never opened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from foretell.domain.files import FileData
from foretell.errors import InvalidInput
from foretell.manifest import ModelVersion, scan_repository
from foretell.runtimes.python import RUNTIME
from foretell.runtimes.tempfiles import file_uris, local_files

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "models"
IMAGE = FileData("digit.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"x" * 100)


def fixture(name: str) -> ModelVersion:
    (version,) = [v for v in scan_repository(FIXTURES).versions if v.name == name]
    return version


def test_each_file_is_written_with_its_suffix_and_removed_on_exit() -> None:
    item = {"file": IMAGE, "more": [FileData("a.tar.gz", "x", b"1"), FileData("../../x", "", b"")]}
    with local_files(item) as local:
        first, (second, third) = local["file"], local["more"]
        assert first.read_bytes() == IMAGE.data
        assert (first.suffix, second.suffix, third.suffix) == (".png", ".gz", "")
        assert first.parent == second.parent == third.parent, "one directory per prediction"
        assert first.parent.name.startswith("foretell-input-")
        directory = first.parent
    assert not directory.exists()
    assert item["file"] is IMAGE, "the item itself is left as it was"


def test_the_directory_goes_when_the_prediction_fails() -> None:
    seen: list[Path] = []

    def predict() -> None:
        with local_files({"file": IMAGE}) as local:
            seen.append(local["file"].parent)
            raise RuntimeError("the model failed")

    with pytest.raises(RuntimeError):
        predict()
    assert not seen[0].exists()


def test_an_input_without_files_makes_no_directory(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with local_files({"n": 1, "s": "x"}) as local:
        assert local == {"n": 1, "s": "x"}
    assert list(tmp_path.iterdir()) == []


def test_paths_show_as_uris_and_bytes_stay_strings() -> None:
    schema = {
        "properties": {
            "a": {"type": "string", "format": "path"},
            "b": {"type": "string", "format": "file-path"},
            "c": {"type": "string", "format": "binary"},
            "d": {"anyOf": [{"type": "array", "items": {"type": "string", "format": "path"}}]},
        }
    }
    assert file_uris(schema)["properties"] == {
        "a": {"type": "string", "format": "uri"},
        "b": {"type": "string", "format": "uri"},
        "c": {"type": "string"},
        "d": {"anyOf": [{"type": "array", "items": {"type": "string", "format": "uri"}}]},
    }


def test_a_python_model_reads_the_file_and_it_is_gone_after() -> None:
    model = RUNTIME.load(fixture("file-info"))
    assert model.signature.input_schema["properties"]["file"]["format"] == "uri"
    (out,) = model.predict([{"file": IMAGE}])
    assert (out["size"], out["suffix"]) == (len(IMAGE.data), ".png")
    assert not Path(out["path"]).exists()


@pytest.mark.parametrize("value", ["/etc/hostname", "https://example.com/a.png"])
def test_a_string_in_a_files_place_is_refused_never_opened(value: str) -> None:
    model = RUNTIME.load(fixture("reads-file"))
    with pytest.raises(InvalidInput) as caught:
        model.predict([{"path": value}])
    (error,) = caught.value.errors
    assert (error["loc"], error["type"]) == (["input", "path"], "file_reference_invalid")
