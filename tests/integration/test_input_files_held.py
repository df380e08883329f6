"""Input files' bytes held in memory are capped server-wide (max_input_files_bytes_held): past
the cap, predictions wait for others to end instead of holding more, and every byte is given back
when its prediction ends, whichever way it ends."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

pytestmark = pytest.mark.anyio

MODEL = "fixtures/file-info"
MODELS = (MODEL,)
SETTINGS = {"max_input_files_bytes_held": 1024}  # each input below holds 700 bytes
VALIDATE = {"Validate-Input": "true"}


def data_uri(seed: int) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(bytes([seed]) * 700).decode()


async def test_inputs_past_the_cap_all_run_and_their_bytes_are_given_back(api: Any) -> None:
    service = api.app.state.service
    created = [await api.create(MODEL, {"file": data_uri(i)}) for i in range(4)]
    records = await asyncio.gather(*(api.wait_for(p["id"]) for p in created))

    assert [r["status"] for r in records] == ["succeeded"] * 4, records
    assert [r["output"]["size"] for r in records] == [700] * 4
    assert service._held.held == 0


@pytest.mark.parametrize("prefer", ["wait=30", None])
async def test_with_validate_input_held_bytes_are_given_back_too(
    api: Any, prefer: str | None
) -> None:
    service = api.app.state.service
    record = await api.create(MODEL, {"file": data_uri(9)}, prefer=prefer, headers=VALIDATE)
    done = await api.wait_for(record["id"])

    assert done["status"] == "succeeded", done
    assert service._held.held == 0


async def test_a_refused_input_holds_nothing(api: Any) -> None:
    service = api.app.state.service
    response = await api.post(MODEL, {"file": "data:;base64,%%%"}, headers=VALIDATE)

    assert response.status_code == 422, response.text
    assert service._held.held == 0
