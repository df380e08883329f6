"""Files a caller sends a model or a model makes: bytes in flight, and a stored file's record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FileData:
    """One file's bytes with its name and type, as they cross to a replica (an input, written
    there to a temporary file the model opens) or back from it (an output, stored by the server
    and replaced by its URL). Plain bytes: a replica may be another process or another machine."""

    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file the server keeps: an upload, or a prediction's output. `owner` is whose it is (the
    key's owner that uploaded it, or the prediction's); another owner is told it does not exist."""

    id: str
    owner: str
    name: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    expires_at: datetime | None
    prediction_id: str | None = None  # set for a model's output
    deleted_at: datetime | None = None  # set once retention (or its owner) removed its bytes
