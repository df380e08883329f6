"""Auth unit tests run on asyncio (anyio's pytest plugin), over fakes from auth_fakes.py."""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
