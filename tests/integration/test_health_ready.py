"""GET /health/ready is open, as probes are, so it names no model to a caller without a key:
anyone learns ready or not (200 / 503) and how many deployments are in each status; a key also
learns the status of each deployment it may see, and of no other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _app import NativeApi, fixture_repository, serving

from foretell.config import Settings
from foretell.domain.access import Scope

pytestmark = pytest.mark.anyio

REPOSITORY = {
    "acme/echo": "echo",  # private: acme's keys and admins see it
    "acme/broken": "raises-in-setup",  # private, failed
    "globex/shared": "echo-public",  # public: every key sees it
}
COUNTS_READY = {"building": 0, "deploying": 0, "ready": 2, "failed": 1, "stopped": 0}


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NativeApi]:
    base = tmp_path_factory.mktemp("health")
    repo = fixture_repository(base / "repository", REPOSITORY)
    async with serving(Settings(repository=repo, data_dir=base / "data")) as api:
        yield api


async def ready_as(api: NativeApi, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=api.http._transport, base_url="http://test") as http:
        return await http.get("/health/ready", headers=headers)


async def key(api: NativeApi, owner: str, scope: Scope = Scope.READ) -> dict[str, str]:
    made = await api.app.state.keys.create(owner=owner, scope=scope)
    return {"Authorization": f"Bearer {made.key}"}


async def test_without_a_key_it_counts_deployments_by_status_and_names_none(
    served: NativeApi,
) -> None:
    response = await ready_as(served, {})

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "deployments": COUNTS_READY}
    for name in ("acme", "globex", "echo", "broken", "shared"):
        assert name not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer ft_0000_nope"},  # unknown
        {"Authorization": "Basic dXNlcg=="},  # a scheme foretell does not take
        {"X-API-Key": ""},
    ],
    ids=["unknown key", "other scheme", "empty key"],
)
async def test_a_key_it_cannot_use_gets_the_counts_never_a_refusal(
    served: NativeApi, headers: dict[str, str]
) -> None:
    response = await ready_as(served, headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "deployments": COUNTS_READY}


async def test_a_key_sees_the_deployments_of_the_models_it_may_see(served: NativeApi) -> None:
    acme = await ready_as(served, await key(served, "acme"))
    globex = await ready_as(served, await key(served, "globex", Scope.PREDICT))
    admin = await ready_as(served, await key(served, "root", Scope.ADMIN))

    assert acme.status_code == globex.status_code == admin.status_code == 200
    assert acme.json() == {
        "status": "ready",
        "deployments": {
            "acme/broken:1": "failed",
            "acme/echo:1": "ready",
            "globex/shared:1": "ready",
        },
    }
    assert globex.json() == {"status": "ready", "deployments": {"globex/shared:1": "ready"}}
    assert admin.json()["deployments"] == acme.json()["deployments"]


async def test_while_a_model_deploys_it_is_503_with_or_without_a_key(tmp_path: Path) -> None:
    repo = fixture_repository(tmp_path / "repository", {"acme/slow": "slow-setup"})
    async with serving(Settings(repository=repo, data_dir=tmp_path / "data"), ready=False) as api:
        anonymous = await ready_as(api, {})
        admin = await api.http.get("/health/ready")
        await api.wait_ready()
        after: Any = (await ready_as(api, {})).json()

    assert anonymous.status_code == 503, anonymous.text
    assert anonymous.json() == {
        "status": "deploying",
        "deployments": {"building": 0, "deploying": 1, "ready": 0, "failed": 0, "stopped": 0},
    }
    assert admin.status_code == 503, admin.text
    assert admin.json() == {"status": "deploying", "deployments": {"acme/slow:1": "deploying"}}
    assert after["deployments"]["ready"] == 1
