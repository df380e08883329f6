"""Webhook unit tests: async ones run on asyncio (anyio's pytest plugin) over webhook_fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from webhook_fakes import Harness


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def harness(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Harness]:
    made = Harness(tmp_path)
    yield made
    for deliveries in made.opened:
        await deliveries.close()
