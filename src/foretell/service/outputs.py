"""A model's output files: each stored as its prediction owner's, and replaced by its URL."""

from __future__ import annotations

from typing import Any, Protocol

from foretell.domain import ErrorSource, PredictionError
from foretell.domain.files import FileData, StoredFile
from foretell.errors import FileTooLarge, ForetellError, InvalidRequest, StorageFull


class FileKeeper(Protocol):
    """What storing outputs needs of `foretell.files.FileService`."""

    def url(self, file_id: str) -> str: ...

    async def save(
        self, owner: str, file: FileData, *, prediction_id: str | None = None
    ) -> StoredFile: ...


class NotKept(Exception):
    """An output file the store refused (its quota, its size limit, its kind): the prediction
    fails with `error`, naming the file and the limit."""

    def __init__(self, file: FileData, cause: ForetellError) -> None:
        super().__init__(f"{file.name}: {cause.message}")
        self.error = _refused(file, cause)


async def keep_files(files: FileKeeper, output: Any, owner: str, prediction_id: str) -> Any:
    """`output` with each FileData in it stored (as `owner`'s, for `prediction_id`) and
    replaced by its URL; the same file twice is stored once. Raises NotKept for a file the
    store refuses (those stored before it stay until their retention passes)."""
    urls: dict[int, str] = {}  # by the FileData's identity: one file in two places

    async def walk(value: Any) -> Any:
        if isinstance(value, FileData):
            url = urls.get(id(value))
            if url is None:
                try:
                    stored = await files.save(owner, value, prediction_id=prediction_id)
                except ForetellError as exc:
                    raise NotKept(value, exc) from exc
                url = urls[id(value)] = files.url(stored.id)
            return url
        if isinstance(value, dict):
            return {k: await walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [await walk(v) for v in value]
        return value

    return await walk(output)


def _refused(file: FileData, cause: ForetellError) -> PredictionError:
    """The server's quota is the server's error (the caller may retry later); a file over the
    size limit, or not what its name says, is the model's."""
    where = f"its output file '{file.name}' could not be stored"
    if isinstance(cause, StorageFull):
        detail = {"retry_after_s": cause.retry_after_s}
        return PredictionError(ErrorSource.INTERNAL, f"{where}: {cause.message}", detail)
    if isinstance(cause, FileTooLarge):
        return PredictionError(ErrorSource.MODEL, f"{where}: {cause.message}")
    source = ErrorSource.MODEL if isinstance(cause, InvalidRequest) else ErrorSource.INTERNAL
    return PredictionError(source, f"{where}: {cause.message}")
