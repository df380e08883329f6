"""A file input (a `Path`, `format: uri` or `binary`) takes a URL, a data: URI or a stored file;
a path on the server is refused by the input schema, whatever its form."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, DirectoryPath, FilePath, NewPath

from foretell.errors import InvalidInput
from foretell.manifest.schema import InputValidator

REFUSED = (
    "a file input is an http(s) URL, a data: URI or an uploaded file's id or URL; "
    "a path on the server cannot be named"
)
FOLDER = "a folder cannot be sent as an input: a path on the server cannot be named"


class Inner(BaseModel):
    source: Path


class Paths(BaseModel):
    """Every form a predict signature may give a path, as the python runtime publishes it."""

    model_config = ConfigDict(extra="forbid")

    plain: Path | None = None
    pure: PurePath | None = None
    file: FilePath | None = None
    folder: DirectoryPath | None = None
    new: NewPath | None = None
    many: list[Path] = []
    mapping: dict[str, Path] = {}
    nested: Inner | None = None
    either: Path | int | None = None


@pytest.fixture(scope="module")
def validator() -> InputValidator:
    return InputValidator(Paths.model_json_schema())


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        pytest.param({"plain": "/etc/hostname"}, ["plain"], id="path"),
        pytest.param({"pure": "/etc/hostname"}, ["pure"], id="pure-path"),
        pytest.param({"file": "/etc/hostname"}, ["file"], id="file-path"),
        pytest.param({"new": "/tmp/new"}, ["new"], id="new-path"),
        pytest.param({"many": ["a.txt", "/etc/hostname"]}, ["many", 0], id="list"),
        pytest.param({"mapping": {"k": "../../etc/hostname"}}, ["mapping", "k"], id="dict"),
        pytest.param({"nested": {"source": "/etc/hostname"}}, ["nested", "source"], id="nested"),
        pytest.param({"plain": ""}, ["plain"], id="empty"),
        pytest.param({"plain": "file:///etc/passwd"}, ["plain"], id="file-url"),
        pytest.param({"plain": "../../etc/hostname"}, ["plain"], id="relative"),
        pytest.param({"plain": "etc/hostname"}, ["plain"], id="relative-no-dots"),
        pytest.param({"plain": "hostname.txt"}, ["plain"], id="file-name"),
        pytest.param({"plain": "~/.ssh/id_rsa"}, ["plain"], id="home"),
        pytest.param({"plain": "C:\\Windows\\win.ini"}, ["plain"], id="windows"),
        pytest.param({"plain": "ftp://example.com/a.png"}, ["plain"], id="ftp"),
        pytest.param({"plain": "http:///etc/passwd"}, ["plain"], id="http-without-host"),
    ],
)
def test_a_path_is_refused_naming_its_field(
    validator: InputValidator, data: dict[str, Any], loc: list[Any]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        validator.validate(data)
    first = caught.value.errors[0]
    assert first["loc"] == ["input", *loc]
    assert (first["type"], first["msg"]) == ("file_reference_invalid", REFUSED)
    assert f"input.{'.'.join(map(str, loc))}: {REFUSED}" in str(caught.value)


def test_a_folder_is_refused_whatever_the_value(validator: InputValidator) -> None:
    with pytest.raises(InvalidInput) as caught:
        validator.validate({"folder": "https://example.com/dir/"})
    (error,) = caught.value.errors
    assert (error["loc"], error["type"], error["msg"]) == (
        ["input", "folder"],
        "directory_not_accepted",
        FOLDER,
    )


def test_a_url_with_credentials_is_refused(validator: InputValidator) -> None:
    with pytest.raises(InvalidInput) as caught:
        validator.validate({"plain": "https://user:secret@example.com/a.png"})
    (error,) = caught.value.errors
    assert (error["type"], error["msg"]) == (
        "file_reference_invalid",
        "a file input's URL cannot carry a user name or password",
    )


@pytest.mark.parametrize("value", ["data:image/png;base64", "data:", "DATA:text/plain"])
def test_a_data_uri_without_its_comma_is_told_so(validator: InputValidator, value: str) -> None:
    # Not "a path on the server cannot be named": the caller meant a data: URI.
    with pytest.raises(InvalidInput) as caught:
        validator.validate({"plain": value})
    (error,) = caught.value.errors
    assert (error["type"], error["msg"]) == (
        "file_reference_invalid",
        "a data: URI has a comma before its data: data:[<type>][;base64],<data>",
    )


@pytest.mark.parametrize(
    "value",
    [
        "https://example.com/digit.png",
        "HTTP://127.0.0.1:8080/a?b=c",
        "data:image/png;base64,iVBORw0KGgo=",
        "data:,hello",
        "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b",
        "https://foretell.example/v1/files/abc",
    ],
)
def test_urls_data_uris_and_file_ids_pass_as_sent(validator: InputValidator, value: str) -> None:
    assert validator.validate({"plain": value})["plain"] == value


def test_a_path_in_a_union_is_refused_but_the_other_choices_stand(
    validator: InputValidator,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        validator.validate({"either": "/etc/hostname"})
    assert {e["type"] for e in caught.value.errors} == {"file_reference_invalid", "int_parsing"}
    assert validator.validate({"either": 3})["either"] == 3


def test_an_unset_or_null_path_passes(validator: InputValidator) -> None:
    out = validator.validate({"plain": None, "many": []})
    assert (out["plain"], out["many"]) == (None, [])


def test_the_validator_says_whether_its_model_takes_files(validator: InputValidator) -> None:
    assert validator.takes_files
    assert validator.files is not None
    for form in ("uri", "binary", "path", "file-path"):
        schema = {"type": "object", "properties": {"f": {"type": "string", "format": form}}}
        assert InputValidator(schema).takes_files, form
    plain = {"type": "object", "properties": {"text": {"type": "string", "format": "date"}}}
    assert not InputValidator(plain).takes_files
    assert InputValidator(plain).files is None


def test_the_file_references_of_a_validated_input_are_found_where_they_are(
    validator: InputValidator,
) -> None:
    data = validator.validate(
        {
            "plain": "https://a.example/1.png",
            "many": ["data:,x", "file-1"],
            "mapping": {"k": "https://a.example/2"},
            "nested": {"source": "file-2"},
            "either": "https://a.example/3",
        }
    )
    assert validator.files is not None
    assert validator.files.find(data) == [
        (("plain",), "https://a.example/1.png"),
        (("many", 0), "data:,x"),
        (("many", 1), "file-1"),
        (("mapping", "k"), "https://a.example/2"),
        (("nested", "source"), "file-2"),
        (("either",), "https://a.example/3"),
    ]
    swapped = validator.files.visit(data, lambda loc, value: f"<{'.'.join(map(str, loc))}>")
    assert swapped["many"] == ["<many.0>", "<many.1>"]
    assert swapped["nested"] == {"source": "<nested.source>"}
    assert data["many"] == ["data:,x", "file-1"], "the validated input is left as it was"


def test_a_union_of_a_list_and_a_file_is_found_in_either_form() -> None:
    class Either(BaseModel):
        files: list[Path] | Path
        n: int | None = None

    validator = InputValidator(Either.model_json_schema())
    assert validator.files is not None
    one = validator.validate({"files": "https://a.example/1"})
    assert validator.files.find(one) == [(("files",), "https://a.example/1")]
    many = validator.validate({"files": ["https://a.example/1", "f2"], "n": 3})
    assert validator.files.find(many) == [
        (("files", 0), "https://a.example/1"),
        (("files", 1), "f2"),
    ]
    assert validator.files.find(validator.validate({"files": []})) == []
