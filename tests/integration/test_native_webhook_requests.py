"""The webhook a prediction asks for: both request forms, the event filter, unsafe targets."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = ("fixtures/echo",)

ECHO = {"model": "fixtures/echo", "input": {"text": "hook"}}


async def post(api: Any, **fields: Any) -> Any:
    return await api.http.post("/v1/predictions", json={**ECHO, **fields})


async def test_a_bare_url_gets_start_and_completed_by_default(api: Any) -> None:
    response = await post(api, webhook="https://hooks.example.com/in?team=ml")
    assert response.status_code == 201, response.text
    assert response.json()["webhook"] == {
        "url": "https://hooks.example.com/in?team=ml",
        "events": ["start", "completed"],
    }


async def test_a_bare_url_with_an_events_filter(api: Any) -> None:
    response = await post(
        api,
        webhook="https://hooks.example.com/in",
        webhook_events_filter=["completed", "logs", "completed"],
    )
    assert response.status_code == 201, response.text
    assert response.json()["webhook"]["events"] == ["completed", "logs"]


async def test_events_in_both_places_or_a_filter_alone_is_422(api: Any) -> None:
    both = await post(
        api,
        webhook={"url": "https://hooks.example.com/in", "events": ["start"]},
        webhook_events_filter=["completed"],
    )
    alone = await post(api, webhook_events_filter=["completed"])
    for response, message in (
        (both, "not both"),
        (alone, "webhook_events_filter needs a webhook URL"),
    ):
        assert response.status_code == 422, response.text
        assert message in response.text


async def test_an_unknown_event_is_422_naming_it(api: Any) -> None:
    response = await post(
        api, webhook="https://hooks.example.com/in", webhook_events_filter=["finished"]
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "webhook_events_filter", 0]
    assert "finished" in str(error["input"])


async def test_a_metadata_address_is_refused_at_creation_and_nothing_is_created(api: Any) -> None:
    before = len(await api.list_all(model="fixtures/echo"))
    response = await post(api, webhook="http://169.254.169.254/latest/meta-data/")
    assert response.status_code == 400, response.text
    assert response.json() == {
        "detail": "webhook: 'http://169.254.169.254/latest/meta-data/' points at "
        "169.254.169.254, a link-local or cloud metadata address; webhooks are never sent there"
    }
    assert len(await api.list_all(model="fixtures/echo")) == before


async def test_loopback_is_refused_unless_the_server_allows_private_targets(
    api: Any, serve: Any
) -> None:
    refused = await post(api, webhook="http://127.0.0.1:9/hook")
    assert refused.status_code == 400, refused.text
    assert "FORETELL_WEBHOOK_ALLOW_PRIVATE=true" in refused.json()["detail"]

    echo = api.app.state.settings.repository / "fixtures" / "echo"
    async with serve({"fixtures/echo": echo}, webhook_allow_private=True) as private_ok:
        accepted = await post(private_ok, webhook="http://127.0.0.1:9/hook")
        assert accepted.status_code == 201, accepted.text
