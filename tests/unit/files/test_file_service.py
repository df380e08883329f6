"""FileService over a real store (each backend) and a local directory: what is stored reads back;
limits leave nothing behind; other owners see nothing; deletion and retention remove the bytes."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PIL import Image

from foretell.config import Settings
from foretell.domain.access import Principal, Scope
from foretell.domain.files import FileData, StoredFile
from foretell.errors import FileGone, FileKindMismatch, FileNotFound, FileTooLarge, StorageFull
from foretell.files import FileService
from foretell.files.blobs import LocalBlobs
from foretell.files.intake import WRITE_BYTES
from foretell.store import PredictionStore

T = TypeVar("T")
ACME = Principal(owner="acme", scope=Scope.PREDICT)
OTHER = Principal(owner="other", scope=Scope.PREDICT)
ADMIN = Principal(owner="root", scope=Scope.ADMIN)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, "PNG")
    return buffer.getvalue()


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def run(
    db_url: str,
    tmp_path: Path,
    scenario: Callable[[FileService, Clock], Awaitable[T]],
    **settings: Any,
) -> T:
    clock = Clock()

    async def go() -> T:
        store = await PredictionStore.open(db_url)
        options = Settings(data_dir=tmp_path / "data", port=8123, **settings)
        files = FileService(store.files, LocalBlobs(tmp_path / "blobs"), options, clock=clock)
        try:
            return await scenario(files, clock)
        finally:
            await files.close()
            await store.close()

    return asyncio.run(go())


def kept(tmp_path: Path) -> list[Path]:
    """Every file under the blob directory, staged ones included."""
    return [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]


def test_an_upload_reads_back_whole_and_in_ranges(db_url: str, tmp_path: Path) -> None:
    image = png()

    async def scenario(files: FileService, _: Clock) -> tuple[Any, ...]:
        file = await files.upload("acme", "../../etc/cat.png", None, chunks(image[:10], image[10:]))
        again = await files.get(file.id, ACME)
        middle = b"".join([c async for c in files.stream(file, 5, 12)])
        return file, again, await files.read(file), middle

    file, again, whole, middle = run(db_url, tmp_path, scenario)
    assert again == file
    assert (file.name, file.content_type, file.size) == ("cat.png", "image/png", len(image))
    assert file.expires_at == file.created_at + timedelta(days=1)
    assert whole == image
    assert middle == image[5:12]
    assert kept(tmp_path) == [tmp_path / "blobs" / file.id[-2:] / file.id]


def test_urls_and_references(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, host="0.0.0.0", port=9000)
    files = FileService(None, LocalBlobs(tmp_path / "b"), settings)  # type: ignore[arg-type]
    file_id = "file_" + "ab" * 16
    assert files.url(file_id) == f"http://127.0.0.1:9000/v1/files/{file_id}"
    assert files.reference(file_id) == file_id
    assert files.reference(f"https://elsewhere.example/v1/files/{file_id}?x=1") == file_id
    assert files.reference(f"http://h/prefix/v1/files/{file_id}") == file_id
    for other in ("file_123", "https://x/v1/files/file_zz", "/v1/files/" + file_id, "cat.png"):
        assert files.reference(other) is None
    public = Settings(data_dir=tmp_path, public_url="https://api.example/")
    assert FileService(None, LocalBlobs(tmp_path / "b"), public).url(file_id) == (  # type: ignore[arg-type]
        f"https://api.example/v1/files/{file_id}"
    )


def test_a_file_over_the_limit_leaves_nothing(db_url: str, tmp_path: Path) -> None:
    async def scenario(files: FileService, _: Clock) -> FileTooLarge:
        with pytest.raises(FileTooLarge) as refused:
            await files.upload("acme", "big.bin", None, chunks(b"x" * 600, b"x" * 600))
        assert await files.page(ADMIN, 10) == []
        return refused.value

    error = run(db_url, tmp_path, scenario, max_file_bytes=1000)
    assert "file 'big.bin' of 1200 bytes or more exceeds the limit of 1000 bytes" in str(error)
    assert "max_file_bytes" in str(error)
    assert kept(tmp_path) == []


def test_past_the_quota_nothing_is_kept_and_retry_waits_for_an_expiry(
    db_url: str, tmp_path: Path
) -> None:
    async def scenario(files: FileService, clock: Clock) -> StorageFull:
        await files.upload("acme", "a.bin", None, chunks(b"a" * 700))
        clock.now += timedelta(seconds=40)
        with pytest.raises(StorageFull) as refused:
            await files.upload("acme", "b.bin", None, chunks(b"b" * 200, b"b" * 200))
        assert len(await files.page(ADMIN, 10)) == 1
        return refused.value

    error = run(db_url, tmp_path, scenario, max_files_bytes=1000, file_retention_s=100)
    assert (error.used, error.limit, error.retry_after_s) == (700, 1000, 61)
    assert len(kept(tmp_path)) == 1  # the first file only: nothing staged is left


def test_uploads_side_by_side_never_hold_more_than_the_quota_on_disk(
    db_url: str, tmp_path: Path
) -> None:
    # Ten uploads of two 1 MB chunks in step (each chunk is written as it comes) under a 3 MB
    # quota: checked each against what was stored alone, all ten staged their first megabyte
    # (10 MB on disk) before any was refused.
    size = WRITE_BYTES
    peak = 0

    async def in_step(i: int) -> AsyncIterator[bytes]:
        nonlocal peak
        for _ in range(2):
            peak = max(peak, sum(p.stat().st_size for p in kept(tmp_path)))
            yield bytes([i]) * size
            await asyncio.sleep(0.01)  # the others take their turn

    async def scenario(files: FileService, _: Clock) -> list[object]:
        uploads = (files.upload("acme", f"{i}.bin", None, in_step(i)) for i in range(10))
        return await asyncio.gather(*uploads, return_exceptions=True)

    outcomes = run(db_url, tmp_path, scenario, max_files_bytes=3 * size)
    stored = [o for o in outcomes if isinstance(o, StoredFile)]
    assert len(stored) == 1
    assert all(isinstance(o, StorageFull) for o in outcomes if o not in stored)
    assert peak <= 3 * size
    assert kept(tmp_path) == [tmp_path / "blobs" / stored[0].id[-2:] / stored[0].id]


def test_a_declared_image_that_is_text_is_refused(db_url: str, tmp_path: Path) -> None:
    async def scenario(files: FileService, _: Clock) -> FileKindMismatch:
        with pytest.raises(FileKindMismatch) as refused:
            await files.upload("acme", "cat.png", "image/png", chunks(b"not a picture"))
        return refused.value

    error = run(db_url, tmp_path, scenario)
    assert str(error) == (
        "file 'cat.png': declared image/png, but the bytes are not an image "
        "(their kind is not recognized)"
    )
    assert kept(tmp_path) == []


def test_a_models_output_is_kept_under_the_type_its_bytes_are(db_url: str, tmp_path: Path) -> None:
    async def scenario(files: FileService, _: Clock) -> list[StoredFile]:
        text = FileData("out.png", "image/png", b"a caption")
        image = FileData("out", "application/octet-stream", png())
        return [await files.save("acme", f, prediction_id="p-1") for f in (text, image)]

    text, image = run(db_url, tmp_path, scenario)
    assert (text.content_type, image.content_type) == ("application/octet-stream", "image/png")
    assert text.prediction_id == "p-1"


def test_another_owner_is_told_it_does_not_exist(db_url: str, tmp_path: Path) -> None:
    async def scenario(files: FileService, _: Clock) -> tuple[str, str, StoredFile]:
        file = await files.upload("acme", "a.txt", None, chunks(b"hello"))
        with pytest.raises(FileNotFound) as theirs:
            await files.get(file.id, OTHER)
        with pytest.raises(FileNotFound) as missing:
            await files.get("file_" + "0" * 32, OTHER)
        assert await files.page(OTHER, 10) == []
        return (
            str(theirs.value).replace(file.id, "ID"),
            str(missing.value),
            await files.get(file.id, ADMIN),
        )

    theirs, missing, seen = run(db_url, tmp_path, scenario)
    assert theirs == "file 'ID' not found"
    assert missing.endswith("not found")
    assert seen.owner == "acme"


def test_deleted_files_are_gone_with_their_bytes(db_url: str, tmp_path: Path) -> None:
    async def scenario(files: FileService, clock: Clock) -> FileGone:
        file = await files.upload("acme", "a.txt", None, chunks(b"hello"))
        clock.now += timedelta(seconds=5)
        removed = await files.delete(file.id, ACME)
        assert removed.deleted_at == clock.now
        with pytest.raises(FileGone) as gone:
            await files.get(file.id, ACME)
        with pytest.raises(FileGone):
            await files.delete(file.id, ACME)
        return gone.value

    gone = run(db_url, tmp_path, scenario)
    assert str(gone).endswith("was removed at 2026-05-06T07:08:14+00:00: it was deleted")
    assert kept(tmp_path) == []


def test_the_sweep_removes_expired_files_and_says_so(db_url: str, tmp_path: Path) -> None:
    told: list[list[str]] = []

    async def on_removed(removed: list[StoredFile]) -> None:
        told.append([f.id for f in removed])

    async def scenario(files: FileService, clock: Clock) -> tuple[Any, ...]:
        files.on_removed = on_removed
        old = await files.upload("acme", "old.txt", None, chunks(b"old"))
        clock.now += timedelta(seconds=30)
        new = await files.upload("acme", "new.txt", None, chunks(b"new"))
        clock.now += timedelta(seconds=31)  # past old's 60 s, not new's
        with pytest.raises(FileGone):  # already, before any sweep
            await files.get(old.id, ACME)
        swept = await files.sweep()
        again = await files.sweep()
        with pytest.raises(FileGone) as gone:
            await files.get(old.id, ACME)
        return old, new, swept, again, gone.value, await files.read(new)

    old, new, swept, again, gone, data = run(db_url, tmp_path, scenario, file_retention_s=60)
    assert [f.id for f in swept] == [old.id]
    assert again == []
    assert told == [[old.id]]
    assert "its retention of 60 s (file_retention_s) passed" in str(gone)
    assert data == b"new"
    assert kept(tmp_path) == [tmp_path / "blobs" / new.id[-2:] / new.id]


def test_the_sweep_clears_uploads_a_crash_left_staged(db_url: str, tmp_path: Path) -> None:
    staging = tmp_path / "blobs" / ".staging"

    async def scenario(files: FileService, _: Clock) -> list[str]:
        old, fresh = staging / ".upload-old", staging / ".upload-fresh"
        old.write_bytes(b"left by a crash")
        fresh.write_bytes(b"being written")
        two_hours_ago = time.time() - 7200
        os.utime(old, (two_hours_ago, two_hours_ago))
        await files.sweep()
        return sorted(p.name for p in staging.iterdir())

    assert run(db_url, tmp_path, scenario) == [".upload-fresh"]


def test_deleting_a_models_output_file_is_told_as_the_sweep_tells_it(
    db_url: str, tmp_path: Path
) -> None:
    told: list[list[tuple[str, str | None]]] = []

    async def on_removed(removed: list[StoredFile]) -> None:
        told.append([(f.id, f.prediction_id) for f in removed])

    async def scenario(files: FileService, _: Clock) -> str:
        files.on_removed = on_removed
        made = await files.save(
            "acme", FileData("out.txt", "text/plain", b"made"), prediction_id="p1"
        )
        await files.delete(made.id, ACME)
        return made.id

    made = run(db_url, tmp_path, scenario)
    assert told == [[(made, "p1")]], "its prediction's record then says data_removed"
