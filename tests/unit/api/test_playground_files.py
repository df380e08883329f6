"""The playground's files: `/` and `/playground/{name}` answer from the package, revalidated by
ETag, under a policy that lets the page reach only this server; nothing else of the package (its
Python code) and no other path is served; every file ships in a wheel (package data)."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest

from foretell.api import playground
from foretell.api.app import asgi, create_app
from foretell.config import Settings

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[3]
FOLDER = Path(playground.__file__).parent
# What the page makes the browser fetch: its scripts, styles, icons and the modules they import.
_FETCHED = re.compile(r"""(?:src|href)\s*=\s*["'](/playground/[^"']+)["']""")
_IMPORTED = re.compile(r"""^import .* from ["']\./([\w.-]+)["'];$""", re.MULTILINE)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def http(tmp_path: Path) -> httpx.AsyncClient:
    # No lifespan: the page and its files need no store, model or key.
    app = create_app(Settings(repository=tmp_path, data_dir=tmp_path / "data"))
    transport = httpx.ASGITransport(app=asgi(app))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_the_page_needs_no_key_and_may_reach_only_this_server(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/")

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert page.headers["cache-control"] == "no-cache"
    assert (await http.head("/")).status_code == 200


async def test_every_file_the_page_loads_is_served_with_its_type(http: httpx.AsyncClient) -> None:
    page = (await http.get("/")).text
    wanted = set(_FETCHED.findall(page))
    for script in FOLDER.glob("*.js"):  # ES modules import each other by relative path
        wanted |= {f"/playground/{name}" for name in _IMPORTED.findall(script.read_text())}

    assert {"/playground/app.js", "/playground/app.css", "/playground/api.js"} <= wanted
    for path in sorted(wanted):
        answer = await http.get(path)
        assert answer.status_code == 200, path
        kind = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
        assert answer.headers["content-type"].startswith(kind[path.rsplit(".", 1)[1]]), path


async def test_an_unchanged_file_is_answered_304(http: httpx.AsyncClient) -> None:
    first = await http.get("/playground/app.js")
    again = await http.get("/playground/app.js", headers={"If-None-Match": first.headers["etag"]})

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


@pytest.mark.parametrize(
    "path",
    [
        "/playground/__init__.py",
        "/playground/missing.js",
        "/playground/..%2F..%2Fconfig.py",
        "/playground/%2E%2E%2Fapi%2Fapp.py",
        "/playground/.hidden.js",
        "/playground/",
        "/index.html",
    ],
)
async def test_nothing_else_is_served(http: httpx.AsyncClient, path: str) -> None:
    answer = await http.get(path)

    assert answer.status_code == 404
    assert "json" in answer.headers["content-type"]


def test_every_file_of_the_page_is_package_data() -> None:
    """A wheel (a non-editable install) ships each file: its name matches pyproject's globs."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["foretell.api.playground"]
    files = [p.name for p in FOLDER.iterdir() if p.is_file() and p.suffix != ".py"]

    assert "index.html" in files
    assert [f for f in files if not any(fnmatch(f, g) for g in globs)] == []


async def test_names_that_are_no_file_are_not_kept(http: httpx.AsyncClient) -> None:
    """Asking for any number of other names grows nothing the server holds."""
    for n in range(50):
        assert (await http.get(f"/playground/made-up-{n}.js")).status_code == 404

    assert playground._read.cache_info().currsize <= len(playground._names())
