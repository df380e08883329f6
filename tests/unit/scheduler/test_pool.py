"""The pool restarts a dead replica with growing waits; a setup that keeps failing gives up."""

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from foretell.errors import ModelLoadFailed
from foretell.workers import Pool


class FlakySetup:
    """A replica whose start() fails `failures` times with the model's traceback, then works."""

    def __init__(self, failures: int) -> None:
        self.version = SimpleNamespace(ref="acme/churn:1")
        self.failures = failures
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        if self.starts <= self.failures:
            raise ModelLoadFailed("acme/churn:1", "RuntimeError: no GPU", "Traceback ...\n")

    async def stop(self) -> None:
        return None


def restart(replica: FlakySetup, *, backoff_s: float) -> tuple[bool, list[str], list[float]]:
    failures: list[str] = []
    sleeps: list[float] = []

    async def scenario() -> bool:
        real_sleep = asyncio.sleep

        async def fake_sleep(seconds: float) -> None:
            sleeps.append(seconds)
            await real_sleep(0)

        pool = Pool([replica], lambda exc: failures.append(exc.traceback))  # type: ignore[list-item]
        pool._backoff_s = backoff_s
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("foretell.workers.pool.asyncio.sleep", fake_sleep)
            return await pool.restart(replica)  # type: ignore[arg-type]

    return asyncio.run(scenario()), failures, sleeps


def test_a_replica_that_starts_again_is_back_with_backoff_between_tries() -> None:
    replica = FlakySetup(failures=2)
    ok, failures, sleeps = restart(replica, backoff_s=1.0)
    assert ok is True
    assert replica.starts == 3
    assert sleeps == [1.0, 2.0]
    assert failures == ["Traceback ...\n"] * 2


def test_a_setup_that_keeps_failing_gives_up_instead_of_looping() -> None:
    replica = FlakySetup(failures=99)
    ok, failures, sleeps = restart(replica, backoff_s=0.5)
    assert ok is False
    assert replica.starts == 3
    assert sleeps == [0.5, 1.0]
    assert len(failures) == 3


def test_a_foreign_error_in_start_counts_as_a_failed_try() -> None:
    class Broken(FlakySetup):
        async def start(self) -> None:
            self.starts += 1
            raise OSError("cannot spawn")

    replica: Any = Broken(failures=0)
    ok, failures, _ = restart(replica, backoff_s=0.0)
    assert ok is False
    assert replica.starts == 3
    assert failures == ["", "", ""]
