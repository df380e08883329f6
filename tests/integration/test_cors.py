"""CORS against a real `foretell serve` (whose hot routes the connection answers itself, past
any ASGI middleware): with --cors-origin, a page of that origin may call the fast lane (native
create, GPUX's /predict as seed 003's browser `fetch` does, OIP infer) and FastAPI's routes,
preflight and real request alike, and read the headers it needs; another origin gets no CORS
header, and without the setting no CORS header is ever sent."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import httpx
import pytest
from _server import ROOT, Server, build_repository, running_server

pytestmark = pytest.mark.slow

PAGE = "http://localhost:3000"  # where the calling page was served from
ELSEWHERE = "http://evil.test"
SEED_003_BODY = {"text": "I love GPUX!"}  # seed 003's JavaScript fetch example's body
IRIS = {"model": "demo/iris", "input": {"features": [[5.1, 3.5, 1.4, 0.2]]}}
OIP_IRIS = {
    "inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [5, 3, 1, 0]}]
}
SERVE = ["--anonymous-public", "--default-model", "demo/sentiment-text"]


def served(tmp_path_factory: pytest.TempPathFactory, *flags: str) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("cors")
    repo = build_repository(base, demo=("iris", "sentiment", "sentiment-text"), fixtures=())
    with running_server(repo, base / "data", args=[*SERVE, *flags]) as server:
        yield server


@pytest.fixture(scope="module")
def cors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from served(tmp_path_factory, "--cors-origin", PAGE, "--cors-origin", "http://a.test")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from served(tmp_path_factory)


def preflight(
    client: httpx.Client, path: str, method: str, headers: str, origin: str = PAGE
) -> httpx.Response:
    """What a browser asks before a request that is not "simple" (JSON, Authorization)."""
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def listed(response: httpx.Response, header: str) -> set[str]:
    return {h.strip().lower() for h in response.headers.get(header, "").split(",") if h.strip()}


def cors_headers(response: httpx.Response) -> list[str]:
    return [h for h in response.headers if h.lower().startswith("access-control-")]


ROUTES = [
    # (path, method, the headers the page sends, its body): the fast lane's three kinds, then
    # FastAPI's routes.
    ("/predict", "POST", "content-type", SEED_003_BODY),
    ("/v1/predictions", "POST", "authorization,content-type,prefer", IRIS),
    ("/v2/models/demo/iris/infer", "POST", "authorization,content-type", OIP_IRIS),
    ("/v1/models", "GET", "authorization", None),
    ("/v1/predictions/p/stream", "GET", "authorization,last-event-id", None),
]


@pytest.mark.parametrize(("path", "method", "headers", "body"), ROUTES)
def test_a_preflight_from_an_allowed_origin_is_allowed(
    cors: Server, path: str, method: str, headers: str, body: object
) -> None:
    with cors.client(headers={}) as client:
        response = preflight(client, path, method, headers)

    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == PAGE
    assert method.lower() in listed(response, "access-control-allow-methods")
    assert set(headers.split(",")) <= listed(response, "access-control-allow-headers")
    assert int(response.headers["access-control-max-age"]) > 0


def test_seed_003_fetch_from_another_origin_gets_its_answer(cors: Server) -> None:
    """fetch('http://localhost:8080/predict', {method: 'POST', headers: {'Content-Type':
    'application/json'}, body: JSON.stringify({text: 'I love GPUX!'})}) from PAGE."""
    with cors.client(headers={}) as client:
        response = client.post("/predict", json=SEED_003_BODY, headers={"Origin": PAGE})

    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "Origin" in response.headers["vary"]
    assert len(response.json()["sentiment"]) == 2


def test_the_native_create_exposes_its_location_and_id(cors: Server) -> None:
    with cors.client() as client:
        response = client.post("/v1/predictions", json=IRIS, headers={"Origin": PAGE})

    assert response.status_code == 201, response.text
    assert response.headers["access-control-allow-origin"] == PAGE
    exposed = listed(response, "access-control-expose-headers")
    assert {"location", "x-prediction-id", "retry-after", "preference-applied"} <= exposed


def test_oip_infer_and_a_fastapi_route_answer_with_cors_headers(cors: Server) -> None:
    with cors.client() as client:
        infer = client.post("/v2/models/demo/iris/infer", json=OIP_IRIS, headers={"Origin": PAGE})
        models = client.get("/v1/models", headers={"Origin": "http://a.test"})

    assert infer.status_code == 200, infer.text
    assert infer.headers["access-control-allow-origin"] == PAGE
    assert models.status_code == 200, models.text
    assert models.headers["access-control-allow-origin"] == "http://a.test"


def test_a_refusal_carries_cors_headers_so_the_page_can_read_why(cors: Server) -> None:
    with cors.client(headers={}) as client:
        response = client.post("/v1/predictions", json=IRIS, headers={"Origin": PAGE})

    assert response.status_code == 401, response.text
    assert response.headers["access-control-allow-origin"] == PAGE


def test_another_origin_gets_no_cors_header(cors: Server) -> None:
    with cors.client(headers={}) as client:
        asked = preflight(client, "/predict", "POST", "content-type", origin=ELSEWHERE)
        sent = client.post("/predict", json=SEED_003_BODY, headers={"Origin": ELSEWHERE})

    assert asked.status_code == 400, asked.text
    assert "access-control-allow-origin" not in asked.headers
    assert sent.status_code == 200, sent.text  # answered: it is the browser that withholds it
    assert "access-control-allow-origin" not in sent.headers


def test_without_an_origin_nothing_changes(cors: Server) -> None:
    with cors.client() as client:
        response = client.post("/v1/predictions", json=IRIS)

    assert response.status_code == 201, response.text
    assert cors_headers(response) == []


@pytest.mark.parametrize(("path", "method", "headers", "body"), ROUTES)
def test_without_the_setting_no_cors_header_is_sent(
    plain: Server, path: str, method: str, headers: str, body: object
) -> None:
    with plain.client() as client:
        asked = preflight(client, path, method, headers)
        sent = client.request(method, path, json=body, headers={"Origin": PAGE})

    assert cors_headers(asked) == []
    assert asked.status_code in {404, 405}, asked.text
    assert cors_headers(sent) == [], sent.headers
    assert sent.status_code < 500, sent.text


def test_make_run_allows_its_own_localhost_origins() -> None:
    recipe = re.search(r"^run:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert recipe is not None
    flags = shlex.split(recipe.group(1))

    origins = [flags[i + 1] for i, flag in enumerate(flags) if flag == "--cors-origin"]

    assert origins == ["http://localhost:$(PORT)", "http://127.0.0.1:$(PORT)"]
