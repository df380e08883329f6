"""A `Path` input names a file on the server: refused by the input schema, whatever its form."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, DirectoryPath, FilePath, NewPath

from foretell.errors import InvalidInput
from foretell.manifest.schema import InputValidator

REFUSED = "file inputs are not accepted yet: a path on the server cannot be named"


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
        pytest.param({"folder": "/etc"}, ["folder"], id="directory-path"),
        pytest.param({"new": "/tmp/new"}, ["new"], id="new-path"),
        pytest.param({"many": ["a.txt", "/etc/hostname"]}, ["many", 0], id="list"),
        pytest.param({"mapping": {"k": "../../etc/hostname"}}, ["mapping", "k"], id="dict"),
        pytest.param({"nested": {"source": "/etc/hostname"}}, ["nested", "source"], id="nested"),
        pytest.param({"plain": ""}, ["plain"], id="empty"),
    ],
)
def test_a_path_is_refused_naming_its_field(
    validator: InputValidator, data: dict[str, Any], loc: list[Any]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        validator.validate(data)
    first = caught.value.errors[0]
    assert first["loc"] == ["input", *loc]
    assert (first["type"], first["msg"]) == ("path_not_accepted", REFUSED)
    assert f"input.{'.'.join(map(str, loc))}: {REFUSED}" in str(caught.value)


def test_a_path_in_a_union_is_refused_but_the_other_choices_stand(
    validator: InputValidator,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        validator.validate({"either": "/etc/hostname"})
    assert {e["type"] for e in caught.value.errors} == {"path_not_accepted", "int_parsing"}
    assert validator.validate({"either": 3})["either"] == 3


def test_an_unset_or_null_path_passes(validator: InputValidator) -> None:
    out = validator.validate({"plain": None, "many": []})
    assert (out["plain"], out["many"]) == (None, [])


def test_the_validator_says_whether_its_model_takes_paths(validator: InputValidator) -> None:
    assert validator.takes_paths
    plain = {"type": "object", "properties": {"text": {"type": "string", "format": "uri"}}}
    assert not InputValidator(plain).takes_paths
