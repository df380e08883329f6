"""A model name no model could have ('acme/-x', 'acme/Ø', 'x/y|z') is a 404 in every dialect,
in that dialect's own not-found shape: Spice and SlashML parsed it into a 500 ValueError while
the others answered 404. They all read a whole name through Deployments.lookup now."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio

MODELS = ("fixtures/echo",)  # any one model: none of the names is among them

# (owner, name) as they go in a URL, and the name as the server decodes it.
NAMES = [
    pytest.param("acme", "-x", "acme/-x", id="leading-dash"),
    pytest.param("acme", "%C3%98", "acme/Ø", id="non-ascii"),
    pytest.param("x", "y%7Cz", "x/y|z", id="pipe"),
    pytest.param("acme", "x:0", "acme/x:0", id="version-0"),
    pytest.param("acme", "x:1:2", "acme/x:1:2", id="two-versions"),
    pytest.param("Acme", "X", "Acme/X", id="capitals"),
]


def key(api: Any) -> str:
    return str(api.http.headers["Authorization"].split(" ", 1)[1])


def not_found(response: httpx.Response) -> Any:
    assert response.status_code == 404, response.text
    return response.json()


@pytest.mark.parametrize(("owner", "name", "said"), NAMES)
async def test_native(api: Any, owner: str, name: str, said: str) -> None:
    response = await api.http.get(f"/v1/models/{owner}/{name}")
    assert not_found(response) == {"detail": f"model '{said}' not found"}


@pytest.mark.parametrize(("owner", "name", "said"), NAMES)
async def test_oip_v2(api: Any, owner: str, name: str, said: str) -> None:
    metadata = await api.http.get(f"/v2/models/{owner}/{name}")
    assert not_found(metadata) == {"error": f"model '{said}' not found"}
    infer = await api.http.post(f"/v2/models/{owner}/{name}/infer", json={"inputs": []})
    assert not_found(infer) == {"error": f"model '{said}' not found"}


@pytest.mark.parametrize(("owner", "name", "said"), NAMES)
async def test_gpux(api: Any, owner: str, name: str, said: str) -> None:
    response = await api.http.post(f"/models/{owner}/{name}/predict", json={})
    assert not_found(response) == {"detail": f"model '{said}' not found"}


@pytest.mark.parametrize(("owner", "name", "said"), NAMES)
async def test_baseten(api: Any, owner: str, name: str, said: str) -> None:
    model_id = f"{owner}-{name}"
    response = await api.http.post(
        f"/model/{model_id}/production/predict",
        headers={"Authorization": f"Api-Key {key(api)}"},
        json={},
    )
    assert not_found(response) == {"error": f"model '{said.replace('/', '-', 1)}' not found"}


@pytest.mark.parametrize(("owner", "name", "said"), NAMES)
async def test_spice(api: Any, owner: str, name: str, said: str) -> None:
    for path in (f"/v1/models/{owner}/{name}/predict", f"/v1/models/{owner}%2F{name}/predict"):
        body = not_found(await api.http.get(path))
        assert (body["status"], body["error_message"]) == (
            "BadRequest",
            f"model '{said}' not found",
        )
        assert list(body) == ["status", "error_message", "model_name", "lookback", "duration_ms"]
    ensemble = await api.http.post("/v1/predict", json={"predictions": [{"model_name": said}]})
    assert ensemble.status_code == 200, ensemble.text
    (member,) = ensemble.json()["predictions"]
    assert (member["status"], member["error_message"]) == (
        "BadRequest",
        f"model '{said}' not found",
    )


@pytest.mark.parametrize(("owner", "name", "said"), NAMES)
async def test_slashml(api: Any, owner: str, name: str, said: str) -> None:
    for model_id in (f"{owner}%2F{name}", f"{owner}/{name}"):
        response = await api.http.post(
            f"/model-deployment/v1/models/{model_id}/predict",
            headers={"Authorization": f"Token {key(api)}"},
            json={"model_input": ["x"]},
        )
        message = f"model '{said}' not found"
        assert not_found(response) == {"error": message, "full_message": [message]}
