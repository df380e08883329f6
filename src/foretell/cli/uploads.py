"""Files named on the command line (`-i image=@photo.png`) stored on the server before the
prediction is made, each with a progress bar (stderr), and sent as the stored file's id."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TransferSpeedColumn

if TYPE_CHECKING:
    from foretell.client import Client


class Counted:
    """A binary file whose reads report how far they got; httpx sends a file object by reading
    it in chunks (and sizes it through fileno), so each chunk moves the bar."""

    def __init__(self, file: IO[bytes], on_read: Callable[[int], None]) -> None:
        self._file, self._on_read = file, on_read
        self.name = file.name

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._on_read(self._file.tell())
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def seekable(self) -> bool:
        return self._file.seekable()

    def fileno(self) -> int:
        return self._file.fileno()


def upload_files(
    client: Client, values: dict[str, Any], console: Console | None = None
) -> dict[str, Any]:
    """`values` with each Path replaced by the id of the file it was uploaded as."""
    paths = {k: v for k, v in values.items() if isinstance(v, Path)}
    if not paths:
        return values
    shown = console or Console(stderr=True)
    uploaded = dict(values)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=shown,
        transient=True,
    ) as progress:
        for key, path in paths.items():
            task = progress.add_task(f"uploading {path.name}", total=path.stat().st_size)
            with path.open("rb") as file:
                sent = Counted(file, partial(_moved, progress, task))
                record = client.upload(sent, filename=path.name)  # type: ignore[arg-type]
            uploaded[key] = str(record["id"])
            shown.print(f"uploaded {path} as {record['id']}", highlight=False)
    return uploaded


def _moved(progress: Progress, task: TaskID, done: int) -> None:
    progress.update(task, completed=done)
