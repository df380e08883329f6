"""GET /v1/predictions stops a page before its bytes pass max_page_bytes and gives `next`, which
goes on exactly where it stopped: eight 9 MB echo records made one 151 MB answer."""

from __future__ import annotations

import pytest
from _app import NativeApi

pytestmark = pytest.mark.anyio

MODELS = ("fixtures/echo",)
CAP = 300_000
SETTINGS = {"max_page_bytes": CAP}
TEXT_BYTES = 60_000  # each record holds it twice (input and output): about 120 KB


async def test_a_page_is_cut_by_bytes_and_next_continues_with_nothing_skipped_or_repeated(
    api: NativeApi,
) -> None:
    created = [
        (await api.create("fixtures/echo", {"text": f"{i}" * TEXT_BYTES}, prefer="wait=30"))["id"]
        for i in range(5)
    ]

    pages: list[list[str]] = []
    url: str | None = "/v1/predictions?model=fixtures/echo&limit=100"
    while url is not None:
        response = await api.http.get(url)
        assert response.status_code == 200, response.text
        assert len(response.content) <= CAP, f"a page of {len(response.content)} bytes"
        page = response.json()
        pages.append([p["id"] for p in page["results"]])
        url = page["next"]

    # Two records (about 240 KB) fit under 300 KB, a third would not: 2, 2, 1.
    assert pages == [created[4:2:-1], created[2:0:-1], created[:1]]


async def test_a_record_larger_than_the_cap_is_listed_alone(api: NativeApi) -> None:
    big = await api.create("fixtures/echo", {"text": "x" * CAP}, prefer="wait=30")
    small = await api.create("fixtures/echo", {"text": "y"}, prefer="wait=30")

    first = (await api.http.get("/v1/predictions?model=fixtures/echo&limit=2")).json()
    second = (await api.http.get(first["next"])).json()

    assert [p["id"] for p in first["results"]] == [small["id"]]
    assert second["results"][0]["id"] == big["id"]
    assert second["results"][0]["output"]["text"] == "x" * CAP
