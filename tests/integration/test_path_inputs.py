"""A caller's input never names a server file: a model's `Path` input is refused before it is
recorded or queued, with the field named, on every route (fixtures/reads-file reads what it is
given, so a path that reached it would come back as the file's text)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio

MODEL = "fixtures/reads-file"
MODELS = (MODEL,)
REFUSED = (
    "a file input is an http(s) URL, a data: URI or an uploaded file's id or URL; "
    "a path on the server cannot be named"
)


async def ids(api: Any) -> set[str]:
    return {p["id"] for p in await api.list_all(model=MODEL)}


@pytest.mark.parametrize(
    ("input", "loc"),
    [
        pytest.param({"path": "/etc/hostname"}, ["path"], id="path"),
        pytest.param({"path": "data:,x", "maybe": "/etc/hostname"}, ["maybe"], id="optional"),
        pytest.param({"path": "../../../etc/hostname"}, ["path"], id="relative"),
        pytest.param({"path": "etc/hostname"}, ["path"], id="relative-no-dots"),
        pytest.param({"path": "file:///etc/passwd"}, ["path"], id="file-url"),
    ],
)
@pytest.mark.parametrize("prefer", [None, "wait=10"], ids=["async", "wait"])
async def test_a_path_input_is_refused_with_422_and_nothing_recorded(
    api: Any, input: dict[str, Any], loc: list[str], prefer: str | None
) -> None:
    before = await ids(api)

    response = await api.post(MODEL, input, prefer=prefer)

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert errors[0]["loc"] == ["body", "input", *loc]
    assert (errors[0]["type"], errors[0]["msg"]) == ("file_reference_invalid", REFUSED)
    assert await ids(api) == before


async def test_each_path_in_a_list_is_named(api: Any) -> None:
    response = await api.post(
        MODEL, {"path": "./a", "more": ["/etc/hostname", "/etc/passwd"]}, prefer="wait=10"
    )

    assert response.status_code == 422, response.text
    locs = [e["loc"] for e in response.json()["detail"]]
    assert locs == [
        ["body", "input", "path"],
        ["body", "input", "more", 0],
        ["body", "input", "more", 1],
    ]


async def test_a_dialect_refuses_it_in_its_own_shape(api: Any) -> None:
    key = api.http.headers["Authorization"].split(" ", 1)[1]
    response = await api.http.post(
        "/model/fixtures-reads-file/production/predict",
        headers={"Authorization": f"Api-Key {key}"},
        json={"path": "/etc/hostname"},
    )

    assert response.status_code == 400, response.text
    assert response.json() == {"error": f"invalid input: input.path: {REFUSED}"}
