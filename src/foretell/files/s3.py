"""Stored files' bytes in an S3-compatible object store (AWS, MinIO, moto), through boto3.

boto3's client is synchronous and thread-safe: its calls run on a pool of our own threads,
never the event loop's default executor (which also resolves host names). Credentials come
the usual way (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance role)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from foretell.config import Settings
from foretell.errors import StoreUnavailable
from foretell.files.blobs import CHUNK_BYTES
from foretell.files.intake import discard

THREADS = 8
RETRY_AFTER_S = 5
T = TypeVar("T")


class S3Blobs:
    """Objects `prefix/<key>` in `bucket`; uploads are staged in a local directory first."""

    def __init__(
        self, bucket: str, prefix: str, staging: Path, endpoint_url: str | None = None
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._staging = staging
        staging.mkdir(parents=True, exist_ok=True)
        config = Config(
            max_pool_connections=THREADS,
            retries={"mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        )
        self._client: Any = boto3.client("s3", endpoint_url=endpoint_url, config=config)
        self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="foretell-s3")

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> S3Blobs:
        """`s3://bucket/prefix`; staged under data_dir/files-staging."""
        parts = urlsplit(url)
        if not parts.netloc:
            raise ValueError(f"files '{url}' names no bucket: write s3://bucket/prefix")
        staging = settings.data_dir / "files-staging"
        return cls(parts.netloc, parts.path, staging, settings.s3_endpoint_url)

    @property
    def staging(self) -> Path:
        return self._staging

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def put(self, key: str, source: Path) -> None:
        try:
            await self._run(self._client.upload_file, str(source), self.bucket, self.key(key))
        finally:
            discard(source)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        body = await self._run(self._get, key, start, end)
        try:
            data: bytes = await self._run(body.read)
            return data
        finally:
            body.close()

    async def stream(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        body = await self._run(self._get, key, start, end)
        try:
            while chunk := await self._run(body.read, CHUNK_BYTES):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        # S3 answers a delete of a missing key as a success.
        await self._run(self._client.delete_object, Bucket=self.bucket, Key=self.key(key))

    async def close(self) -> None:
        await asyncio.to_thread(self._threads.shutdown, True)

    def _get(self, key: str, start: int, end: int | None) -> Any:
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        name = self.key(key)
        try:
            return self._client.get_object(Bucket=self.bucket, Key=name, **extra)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                # As the local store says it: bytes a record names but the store lacks.
                raise FileNotFoundError(f"s3://{self.bucket}/{name}") from exc
            raise

    async def _run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._threads, lambda: call(*args, **kwargs))
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            # Unreachable, refusing, or no such bucket: the caller's request kept nothing.
            raise StoreUnavailable(self.where, str(exc), RETRY_AFTER_S) from exc
