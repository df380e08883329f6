"""A request that cannot be served while its model deploys is told so at once, with when to try
again (503 + Retry-After, ModelNotReady), in its dialect's shape: never held until the model has
loaded. `fixtures/slow-setup` takes 2 s in setup(), so it is still deploying when they arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from _app import FIXTURES, NativeApi

pytestmark = pytest.mark.anyio

SLOW = {"fixtures/slow-setup": FIXTURES / "slow-setup"}
NOT_READY = "model 'fixtures/slow-setup:1' is not ready: deployment is deploying"


@pytest.fixture
async def deploying(serve: Any) -> AsyncIterator[NativeApi]:
    """An app whose only model is still deploying; left once it is ready (nothing runs then)."""
    async with serve(SLOW, ready=False) as api:
        yield api
        await api.wait_ready()


async def still_deploying(api: NativeApi) -> bool:
    model = (await api.http.get("/v1/models/fixtures/slow-setup")).json()
    status: str = model["versions"][0]["deployment"]["status"]
    return status == "deploying"


@pytest.mark.parametrize("prefer", [None, "wait=30"])
async def test_validate_input_on_a_deploying_model_is_503_at_once(
    deploying: NativeApi, prefer: str | None
) -> None:
    response = await deploying.post(
        "fixtures/slow-setup", {"x": 1}, prefer=prefer, headers={"Validate-Input": "true"}
    )

    assert await still_deploying(deploying), "the answer waited for the model to load"
    assert response.status_code == 503, response.text
    assert response.json() == {"detail": NOT_READY}
    assert response.headers["Retry-After"] == "5"
    listed = (await deploying.http.get("/v1/predictions")).json()["results"]
    assert listed == []  # refused before anything was recorded


async def test_spice_answers_a_deploying_model_503_with_retry_after_in_its_shape(
    deploying: NativeApi,
) -> None:
    response = await deploying.http.get("/v1/models/fixtures/slow-setup/predict")
    ensemble = await deploying.http.post(
        "/v1/predict", json={"predictions": [{"model_name": "fixtures/slow-setup"}]}
    )

    assert await still_deploying(deploying)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    body = response.json()
    assert body.pop("duration_ms") >= 0
    assert body == {
        "status": "InternalError",  # not the caller's fault: not a BadRequest
        "error_message": NOT_READY,
        "model_name": "fixtures/slow-setup",
        "model_version": "1",
        "lookback": None,
    }
    assert ensemble.status_code == 200, ensemble.text
    (member,) = ensemble.json()["predictions"]
    assert (member["status"], member["error_message"]) == ("InternalError", NOT_READY)
