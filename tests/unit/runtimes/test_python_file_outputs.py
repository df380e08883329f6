"""A python model returning Paths: each file read into FileData where the path was, the outcome
marked, the schema showing a URI; a path that is no readable file is the model's error."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from foretell.domain.files import FileData
from foretell.manifest import ModelVersion, Repository
from foretell.runtimes import LoadedModel, WithFiles
from foretell.workers.child import run_batch

Find = Callable[[Repository, str], ModelVersion]
Load = Callable[[ModelVersion], LoadedModel]
MakeVersion = Callable[..., ModelVersion]
PNG = b"\x89PNG\r\n\x1a\n"


def python_version(make_version: MakeVersion, source: str) -> ModelVersion:
    manifest = {"runtime": "python", "predictor": "predict.py:Model"}
    return make_version(manifest, {"predict.py": textwrap.dedent(source)})


def test_a_returned_path_comes_back_as_its_files_bytes(
    fixtures: Repository, find: Find, load: Load
) -> None:
    model = load(find(fixtures, "fixtures/draws-image:1"))
    (output,) = model.predict([{"size": 3, "colour": "blue"}])
    assert isinstance(output, WithFiles)
    image = output.output
    assert isinstance(image, FileData)
    assert (image.name, image.content_type) == ("blue-3.png", "image/png")
    assert image.data.startswith(PNG)
    assert model.signature.output_schema == {"type": "string", "format": "uri"}


def test_paths_nested_in_a_dict_and_a_list_each_become_a_file(
    fixtures: Repository, find: Find, load: Load
) -> None:
    model = load(find(fixtures, "fixtures/draws-images-on-thread:1"))
    (output,) = model.predict([{"colours": ["red", "green", "red"]}])
    assert isinstance(output, WithFiles)
    images = output.output["images"]
    assert [f.name for f in images] == ["red.png", "green.png", "red.png"]
    assert all(f.data.startswith(PNG) for f in images)
    assert output.output["count"] == 3
    schema = model.signature.output_schema["additionalProperties"]["anyOf"][0]
    assert schema == {"type": "array", "items": {"type": "string", "format": "uri"}}


def test_outputs_without_paths_are_not_marked(
    make_version: MakeVersion, load: Load, tmp_path: Path
) -> None:
    version = python_version(
        make_version,
        """
        from typing import Any
        from pathlib import Path

        class Model:
            def predict(self, where: str) -> Any:
                return where if where == "text" else {"file": Path(where), "n": (1, 2)}
        """,
    )
    (tmp_path / "notes.txt").write_text("hello")
    model = load(version)
    assert model.predict([{"where": "text"}]) == ["text"]
    (output,) = model.predict([{"where": str(tmp_path / "notes.txt")}])
    assert output == WithFiles({"file": FileData("notes.txt", "text/plain", b"hello"), "n": [1, 2]})


def test_a_replica_marks_an_outcome_that_holds_files(
    fixtures: Repository, find: Find, load: Load
) -> None:
    model = load(find(fixtures, "fixtures/draws-image:1"))
    one, two = run_batch(model, [{"size": 1}, {"size": 2}], capture_logs=False)
    assert one.files
    assert two.files
    assert isinstance(one.output, FileData)
    (plain,) = run_batch(load(find(fixtures, "fixtures/echo:1")), [{"text": "hi"}], False)
    assert not plain.files


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("missing.png", "returned the path '{}', but it is nothing"),
        (".", "returned the path '{}', but it is not a regular file"),
    ],
)
def test_a_path_that_is_no_readable_file_is_the_models_error_naming_it(
    make_version: MakeVersion, load: Load, tmp_path: Path, where: str, says: str
) -> None:
    version = python_version(
        make_version,
        """
        from pathlib import Path

        class Model:
            def predict(self, where: str) -> Path:
                return Path(where)
        """,
    )
    path = str(tmp_path / where)
    (outcome,) = run_batch(load(version), [{"where": path}], capture_logs=False)
    assert outcome.error == "ValueError: predict() " + says.format(path)
    assert not outcome.files
