"""Why a file input gave no file (a URL's fetch, a data: URI, a stored file): its field's error."""

from __future__ import annotations


class Refused(Exception):
    """A file reference that gave no file; `kind` and `msg` as the input error's type and
    message (the 422 entry names the field)."""

    def __init__(self, kind: str, msg: str) -> None:
        super().__init__(msg)
        self.kind, self.msg = kind, msg


def too_large(size: int, limit: int, *, more: bool) -> Refused:
    """The error of a file of `size` bytes (or more) over `limit`."""
    return Refused(
        "file_too_large",
        f"the file is {size:,} bytes{' or more' if more else ''}, more than the limit of "
        f"{limit:,} bytes (max_file_bytes)",
    )
