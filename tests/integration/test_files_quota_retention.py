"""Stored files at their quota (507 + Retry-After, nothing half-written) and past their retention
(the sweep removes the bytes, the record says when and why, GET is 410). Apps with no models,
in-process: each starts in well under a second."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from _app import serving

from foretell.config import Settings

pytestmark = pytest.mark.anyio

SWEPT_WITHIN_S = 30.0  # the sweep runs every 0.25 s here; the rest is for a busy machine


def settings(tmp_path: Path, **options: object) -> Settings:
    repo = tmp_path / "repo"
    repo.mkdir()
    return Settings(repository=repo, data_dir=tmp_path / "data", **options)  # type: ignore[arg-type]


def blobs(tmp_path: Path) -> list[Path]:
    """Every file under data_dir/files, staged ones included."""
    return sorted(p for p in (tmp_path / "data" / "files").rglob("*") if p.is_file())


async def test_past_the_quota_is_507_and_leaves_nothing(tmp_path: Path) -> None:
    async with serving(settings(tmp_path, max_files_bytes=1000), ready=False) as api:
        kept = await api.http.post("/v1/files?filename=a.bin", content=b"a" * 700)
        assert kept.status_code == 201, kept.text
        on_disk = blobs(tmp_path)
        assert len(on_disk) == 1

        full = await api.http.post("/v1/files?filename=b.bin", content=b"b" * 400)
        assert full.status_code == 507, full.text
        assert full.json()["detail"] == (
            "storing 400 bytes would pass the stored files' quota: 700 of 1000 bytes are in "
            "use (max_files_bytes); retry once older files expire or are deleted"
        )
        assert 1 <= int(full.headers["retry-after"]) <= 86401  # when the first one expires
        form = await api.http.post("/v1/files", files={"file": ("c.bin", b"c" * 400)})
        assert form.status_code == 507
        assert blobs(tmp_path) == on_disk

        # Room again once a file is deleted.
        assert (await api.http.delete(f"/v1/files/{kept.json()['id']}")).status_code == 204
        again = await api.http.post("/v1/files?filename=b.bin", content=b"b" * 400)
        assert again.status_code == 201, again.text


async def test_past_its_retention_a_file_is_gone_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="foretell.files")
    async with serving(settings(tmp_path, file_retention_s=1.0), ready=False) as api:
        made = await api.http.post("/v1/files?filename=old.txt", content=b"old")
        assert made.status_code == 201, made.text
        record = made.json()
        assert len(blobs(tmp_path)) == 1

        deadline = time.monotonic() + SWEPT_WITHIN_S
        while (listed := (await api.http.get("/v1/files")).json()["results"])[0][
            "deleted_at"
        ] is None:
            assert time.monotonic() < deadline, f"not swept within {SWEPT_WITHIN_S:g} s"
            await asyncio.sleep(0.05)

        assert listed[0]["id"] == record["id"]
        assert listed[0]["deleted_at"] >= record["expires_at"]
        gone = await api.http.get(record["urls"]["get"])
        assert gone.status_code == 410
        assert gone.json()["detail"] == (
            f"file '{record['id']}' was removed at {listed[0]['deleted_at'].replace('Z', '+00:00')}"
            ": its retention of 1 s (file_retention_s) passed"
        )
        assert blobs(tmp_path) == []
        assert f"deleted file {record['id']} of " in caplog.text
        assert "(3 bytes): its retention ended at" in caplog.text
