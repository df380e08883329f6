"""A model's output files are stored as the prediction owner's and replaced by their URLs; a
file the store refuses fails the prediction naming the file and the limit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from foretell.domain import ErrorSource
from foretell.domain.files import FileData, StoredFile
from foretell.errors import FileTooLarge, ForetellError, InvalidRequest, StorageFull
from foretell.service.outputs import NotKept, keep_files

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeFiles:
    """Keeps files in a list; refuses with `refusal` once `room` files are kept."""

    def __init__(self, room: int = 99, refusal: ForetellError | None = None) -> None:
        self.saved: list[tuple[str, FileData, str | None]] = []
        self.room = room
        self.refusal = refusal

    def url(self, file_id: str) -> str:
        return f"http://files.test/v1/files/{file_id}"

    async def save(
        self, owner: str, file: FileData, *, prediction_id: str | None = None
    ) -> StoredFile:
        if len(self.saved) >= self.room and self.refusal is not None:
            raise self.refusal
        self.saved.append((owner, file, prediction_id))
        now = datetime.now(UTC)
        return StoredFile(
            f"f{len(self.saved)}", owner, file.name, file.content_type, 1, "", now, None
        )


def png(name: str) -> FileData:
    return FileData(name, "image/png", b"\x89PNG\r\n\x1a\n")


async def test_each_file_is_stored_as_the_owners_and_replaced_by_its_url() -> None:
    files = FakeFiles()
    a, b = png("a.png"), png("b.png")
    output = {"images": [a, b, a], "count": 3, "caption": "two"}
    kept = await keep_files(files, output, "alice", "p1")
    assert kept == {
        "images": [
            "http://files.test/v1/files/f1",
            "http://files.test/v1/files/f2",
            "http://files.test/v1/files/f1",
        ],
        "count": 3,
        "caption": "two",
    }
    assert files.saved == [("alice", a, "p1"), ("alice", b, "p1")]
    assert await keep_files(files, a, "alice", "p2") == "http://files.test/v1/files/f3"


@pytest.mark.parametrize(
    ("refusal", "source", "says"),
    [
        (
            StorageFull(10, 95, 100, retry_after_s=30),
            ErrorSource.INTERNAL,
            "storing 10 bytes would pass the stored files' quota: 95 of 100 bytes are in use "
            "(max_files_bytes)",
        ),
        (
            FileTooLarge("b.png", 4096, 1024),
            ErrorSource.MODEL,
            "file 'b.png' of 4096 bytes or more exceeds the limit of 1024 bytes (max_file_bytes)",
        ),
        (
            InvalidRequest("declared image/png, but the bytes are not an image"),
            ErrorSource.MODEL,
            "declared image/png, but the bytes are not an image",
        ),
    ],
)
async def test_a_refused_file_fails_it_naming_the_file_and_the_limit(
    refusal: ForetellError, source: ErrorSource, says: str
) -> None:
    files = FakeFiles(room=1, refusal=refusal)
    with pytest.raises(NotKept) as caught:
        await keep_files(files, [png("a.png"), png("b.png")], "alice", "p1")
    error = caught.value.error
    assert error.source is source
    assert error.message.startswith("its output file 'b.png' could not be stored: " + says)
    if isinstance(refusal, StorageFull):
        assert error.detail == {"retry_after_s": 30}
