"""A store that cannot be reached is 503 with Retry-After in every wire dialect's own shape, and
an open route (readiness) still answers when the key store cannot be read."""

from __future__ import annotations

import orjson
import pytest

import foretell.api.app  # noqa: F401  (imports every dialect's routes, which register their shapes)
from foretell.api import errors as api_errors
from foretell.api.auth import identify
from foretell.errors import StoreUnavailable

DOWN = StoreUnavailable(
    "postgresql://foretell@db.internal:5432/records",
    'connection failed: connection to server at "10.0.0.5", port 5432 failed: Connection refused',
)
# None: the native API's shape (FastAPI's {"detail": ...}).
DIALECTS = [None, "baseten", "gpux", "oip-v2", "slashml", "spice"]


def test_these_are_every_dialect_that_renders_errors() -> None:
    assert set(api_errors._DIALECTS) == set(DIALECTS[1:])


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda tag: tag or "native")
def test_store_unavailable_is_503_with_retry_after(dialect: str | None) -> None:
    response = api_errors.error_response(DOWN, dialect)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    body = response.body.decode()
    assert "the store postgresql://foretell@db.internal:5432/records is unavailable" in body
    assert "Connection refused" in body
    orjson.loads(response.body)  # each dialect's body is JSON


class _KeysDown:
    async def principal(self, key: str) -> object:
        raise DOWN


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_an_open_route_still_answers_when_keys_cannot_be_read() -> None:
    caller = await identify(_KeysDown(), {"authorization": "Bearer abc"})  # type: ignore[arg-type]
    assert caller is None
