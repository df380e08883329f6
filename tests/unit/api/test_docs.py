"""/docs and /redoc load every file they need from this server: nothing from a CDN or Google."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from foretell.api.app import asgi, create_app
from foretell.config import Settings

pytestmark = pytest.mark.anyio

# What a page makes the browser fetch: scripts, styles, icons (and any url() in a style).
_FETCHED = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def http(tmp_path: Path) -> httpx.AsyncClient:
    # No lifespan: the pages and their assets need no store, model or key.
    app = create_app(Settings(repository=tmp_path, data_dir=tmp_path / "data"))
    transport = httpx.ASGITransport(app=asgi(app))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def fetched_by(page: str) -> list[str]:
    return [a or b for a, b in _FETCHED.findall(page)]


@pytest.mark.parametrize(
    ("page", "needs"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
async def test_page_loads_its_assets_from_this_server(
    http: httpx.AsyncClient, page: str, needs: set[str]
) -> None:
    response = await http.get(page)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    urls = fetched_by(response.text)
    assert {url.rsplit("/", 1)[-1] for url in urls} == needs
    assert [url for url in urls if not url.startswith("/")] == []  # no other origin
    assert "googleapis" not in response.text
    # Whatever its scripts ask for, the browser loads nothing from another origin.
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "img-src 'self' data: blob:;" in policy
    assert "'/openapi.json'" in response.text or '"/openapi.json"' in response.text
    for url in urls:
        asset = await http.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
        # Under the package's version: a browser keeps it, and an upgrade has another path.
        assert "immutable" in asset.headers["cache-control"], url
        kind = asset.headers["content-type"]
        assert kind.split(";")[0] in {"text/javascript", "text/css", "image/png"}, url


async def test_swagger_ui_asks_no_online_validator(http: httpx.AsyncClient) -> None:
    page = (await http.get("/docs")).text

    # Otherwise it shows a badge from validator.swagger.io for a spec not on localhost.
    assert '"validatorUrl": null' in page


async def test_an_asset_outside_the_four_is_not_found(http: httpx.AsyncClient) -> None:
    script = fetched_by((await http.get("/docs")).text)[0]
    folder = script.rsplit("/", 1)[0]

    for name in ("core.py", "LICENSE", "..%2f__init__.py"):
        response = await http.get(f"{folder}/{name}")
        assert response.status_code == 404, (name, response.text)
        assert "__init__" in name or "no docs asset" in response.text, response.text
