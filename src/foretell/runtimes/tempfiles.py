"""An input's files as local temporary files: the server sends each file's bytes (`FileData`
where the input's file fields are) and a model opens a path; one directory per prediction,
removed when it ends, whatever the outcome."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Set
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from foretell.domain.files import FileData
from foretell.manifest.file_fields import FILE_FORMATS

# A suffix kept from the caller's file name ("digit.png" -> ".png"), so a model or library that
# goes by extension reads it right; anything stranger is dropped, never put into a path.
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,16}$")


@contextmanager
def local_files(item: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """`item` with each FileData in it (at any depth of dicts and lists) replaced by the Path
    of a temporary file holding its bytes; the files and their directory go on exit."""
    directory: list[Path] = []  # made on the first file: an input without one costs no mkdir
    try:
        yield _swap(dict(item), directory)
    finally:
        for made in directory:
            shutil.rmtree(made, ignore_errors=True)


def _swap(value: Any, directory: list[Path]) -> Any:
    if isinstance(value, FileData):
        if not directory:
            directory.append(Path(tempfile.mkdtemp(prefix="foretell-input-")))
        return _write(value, directory[0])
    if isinstance(value, dict):
        return {k: _swap(v, directory) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_swap(v, directory) for v in value]
    return value


def _write(file: FileData, directory: Path) -> Path:
    suffix = Path(file.name).suffix
    fd, name = tempfile.mkstemp(suffix=suffix if _SUFFIX.match(suffix) else "", dir=directory)
    with open(fd, "wb") as out:
        out.write(file.data)
    return Path(name)


def file_uris(schema: Any, formats: Set[str] = FILE_FORMATS) -> Any:
    """A schema with each string of one of `formats` shown as a URI, Cog's shape for a file:
    what a caller sends, or gets back, is a URL (or a data: URI or an uploaded file), never a
    path (`bytes`' `binary` format is dropped: such a parameter takes a string, as it always
    did)."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and schema.get("format") in formats:
            if schema["format"] == "binary":
                return {k: v for k, v in schema.items() if k != "format"}
            return {**schema, "format": "uri"}
        return {k: file_uris(v, formats) for k, v in schema.items()}
    if isinstance(schema, list):
        return [file_uris(v, formats) for v in schema]
    return schema
