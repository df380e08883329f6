"""Every error under /v2 is the protocol's `{"error": "..."}`, whatever gave it (an unknown path,
a method, the body limit, a key, a model), since tritonclient reads no other shape; and a body
sent compressed (gzip or deflate, as tritonclient sends it) is read decompressed, within the
body limit, while any other Content-Encoding is 415 naming it."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from _server import DEMO_MODELS, running_server
from tritonclient.utils import InferenceServerException

from foretell.domain.access import Scope

pytestmark = pytest.mark.anyio

MODELS = ("demo/iris",)
INFER = "/v2/models/demo/iris/infer"
SETOSA = [5.1, 3.5, 1.4, 0.2]
BODY = {"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": SETOSA}]}
JSON = {"Content-Type": "application/json"}


def limit_of(api: Any) -> int:
    limit: int = api.app.state.settings.max_body_bytes
    return limit


def labels(response: httpx.Response) -> list[Any]:
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    data: list[Any] = outputs["label"]["data"]
    return data


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/v2/nope", 404, "no route GET /v2/nope"),
        ("GET", "/v2/models/iris", 404, "no route GET /v2/models/iris"),  # one-segment name
        (
            "GET",
            "/v2/models/demo/iris/trace/setting",
            404,
            "no route GET /v2/models/demo/iris/trace/setting",
        ),
        (
            "GET",
            "/v2/systemsharedmemory/status",
            404,
            "no route GET /v2/systemsharedmemory/status",
        ),
        ("DELETE", "/v2/models/demo/iris", 405, "Method Not Allowed"),
    ],
)
async def test_a_request_no_route_takes_is_answered_in_the_protocols_shape(
    api: Any, method: str, path: str, status: int, message: str
) -> None:
    response = await api.http.request(method, path)

    assert response.status_code == status, response.text
    assert response.json() == {"error": message}


async def test_outside_v2_an_unknown_path_keeps_the_native_shape(api: Any) -> None:
    for path in ("/v1/nope", "/v2nope"):
        response = await api.http.get(path)

        assert response.status_code == 404, response.text
        assert response.json() == {"detail": "Not Found"}


async def test_a_declared_body_over_the_limit_is_413_in_the_protocols_shape(api: Any) -> None:
    limit = limit_of(api)

    response = await api.http.post(INFER, content=b" " * (limit + 1), headers=JSON)

    assert response.status_code == 413, response.text
    assert response.json() == {
        "error": f"request body of {limit + 1} bytes exceeds the limit of {limit} bytes"
    }


async def test_a_streamed_body_over_the_limit_is_413_in_the_protocols_shape(api: Any) -> None:
    limit = limit_of(api)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the count stops it
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    response = await api.http.post(INFER, content=chunks(), headers=JSON)

    assert response.status_code == 413, response.text
    assert response.json()["error"].endswith(f"exceeds the limit of {limit} bytes")


async def test_a_key_without_the_scope_is_403_in_the_protocols_shape(api: Any) -> None:
    reader = (await api.app.state.keys.create(owner="demo", scope=Scope.READ)).key

    response = await api.http.post(INFER, json=BODY, headers={"Authorization": f"Bearer {reader}"})

    assert response.status_code == 403, response.text
    assert set(response.json()) == {"error"}
    assert "needs a key with scope 'predict'" in response.json()["error"]


CODINGS: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),  # HTTP's deflate is zlib's format, as tritonclient sends it
    ("identity", lambda body: body),
    ("gzip, gzip", lambda body: gzip.compress(gzip.compress(body))),
]


@pytest.mark.parametrize(("coding", "compress"), CODINGS, ids=[c for c, _ in CODINGS])
async def test_a_compressed_body_is_read_decompressed(
    api: Any, coding: str, compress: Callable[[bytes], bytes]
) -> None:
    response = await api.http.post(
        INFER,
        content=compress(orjson.dumps(BODY)),
        headers={**JSON, "Content-Encoding": coding},
    )

    assert labels(response) == [0]


async def test_a_compressed_body_of_exactly_the_limit_is_read(api: Any) -> None:
    limit = limit_of(api)
    body = orjson.dumps(BODY)
    padded = body + b" " * (limit - len(body))

    response = await api.http.post(
        INFER, content=gzip.compress(padded), headers={**JSON, "Content-Encoding": "gzip"}
    )

    assert labels(response) == [0]


async def test_a_zip_bomb_stops_at_the_limit_on_its_decompressed_size(api: Any) -> None:
    limit = limit_of(api)
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    megabyte = b" " * (1 << 20)
    bomb = b"".join(packer.compress(megabyte) for _ in range(4 * limit >> 20)) + packer.flush()
    assert len(bomb) < limit // 100  # the compressed body passes the limit easily

    response = await api.http.post(
        INFER, content=bomb, headers={**JSON, "Content-Encoding": "gzip"}
    )

    assert response.status_code == 413, response.text
    assert response.json() == {
        "error": f"request body of {len(bomb)} bytes (gzip) decompresses to more than the "
        f"limit of {limit} bytes"
    }


async def test_another_content_encoding_is_415_naming_it(api: Any) -> None:
    response = await api.http.post(
        INFER, content=b"\x1b\x00", headers={**JSON, "Content-Encoding": "br"}
    )

    assert response.status_code == 415, response.text
    assert response.json() == {
        "error": "Content-Encoding 'br' is not supported; send the body uncompressed or as "
        "gzip or deflate"
    }
    assert response.headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (gzip.compress(orjson.dumps(BODY))[:-8], "it ends early"),
        (gzip.compress(orjson.dumps(BODY)) + b"extra", "5 bytes follow its end"),
        (orjson.dumps(BODY), "Error -3 while decompressing data: incorrect header check"),
    ],
    ids=["truncated", "trailing bytes", "not compressed"],
)
async def test_a_body_that_is_not_what_its_encoding_says_is_400(
    api: Any, content: bytes, reason: str
) -> None:
    response = await api.http.post(
        INFER, content=content, headers={**JSON, "Content-Encoding": "gzip"}
    )

    assert response.status_code == 400, response.text
    assert response.json() == {"error": f"request body is not valid gzip data: {reason}"}


async def test_other_apis_read_compressed_bodies_too_in_their_own_shapes(api: Any) -> None:
    native = await api.http.post(
        "/v1/predictions",
        content=gzip.compress(
            orjson.dumps({"model": "demo/iris", "input": {"features": [SETOSA]}})
        ),
        headers={**JSON, "Content-Encoding": "gzip", "Prefer": "wait=30"},
    )
    refused = await api.http.post(
        "/v1/keys", content=b"{}", headers={**JSON, "Content-Encoding": "compress"}
    )

    assert native.status_code == 201, native.text
    assert native.json()["status"] == "succeeded", native.json()
    assert refused.status_code == 415, refused.text
    assert refused.json() == {
        "detail": "Content-Encoding 'compress' is not supported; send the body uncompressed or "
        "as gzip or deflate"
    }


# --- tritonclient against a real server ---------------------------------------------------------


@pytest.mark.slow
def test_tritonclient_reads_the_errors_and_sends_compressed_bodies(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "demo").mkdir(parents=True)
    (repo / "demo" / "iris").symlink_to(DEMO_MODELS / "iris", target_is_directory=True)
    with running_server(repo, tmp_path / "data") as server:
        key = {"Authorization": f"Bearer {server.admin_key}"}
        client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
        try:
            rows = triton.InferInput("features", [1, 4], "FP32")
            rows.set_data_from_numpy(np.array([SETOSA], dtype=np.float32))
            # Each call its own headers: tritonclient adds Content-Encoding to the dict it gets.
            compressed = {
                coding: client.infer(
                    "demo/iris", [rows], headers={**key}, request_compression_algorithm=coding
                )
                for coding in ("gzip", "deflate")
            }
            with pytest.raises(InferenceServerException) as one_segment:
                client.get_model_metadata("iris", headers={**key})
            with pytest.raises(InferenceServerException) as missing:
                client.infer("demo/nope", [rows], headers={**key})
            with pytest.raises(InferenceServerException) as no_route:
                client.get_log_settings(headers={**key})
        finally:
            client.close()

    for result in compressed.values():
        assert result.as_numpy("label").tolist() == [0]
    assert (one_segment.value.status(), one_segment.value.message()) == (
        "404",
        "no route GET /v2/models/iris",
    )
    assert (missing.value.status(), missing.value.message()) == (
        "404",
        "model 'demo/nope' not found",
    )
    assert (no_route.value.status(), no_route.value.message()) == (
        "404",
        "no route GET /v2/logging",
    )
