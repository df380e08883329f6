"""A real S3-compatible server for tests: moto's server mode (`moto_server`), in a process of
its own on a free port, and the environment a boto3 client needs to reach it.

Plain helpers: `from _s3 import MotoServer, S3_ENV` (tests/ is on sys.path, see _postgres.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx

START_TIMEOUT_S = 60.0  # it starts in about a second; the rest is for a busy machine
# What boto3 reads: moto takes any key; nothing from this machine's own AWS files or metadata.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass
class MotoServer:
    url: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, log: Path) -> MotoServer:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        script = Path(sys.executable).with_name("moto_server")
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(script), "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **S3_ENV},
            )
        server = cls(f"http://127.0.0.1:{port}", process)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                httpx.get(server.url, timeout=1.0)
                return server
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    server.stop()
                    raise RuntimeError(f"moto_server did not start: {log.read_text()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"foretell-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))
