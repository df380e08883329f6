"""Fixtures for the files tests: a real S3-compatible server (moto's, started once a session,
only by the tests that ask for it) and the environment that points boto3 at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _s3 import S3_ENV, MotoServer


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer.start(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
