"""The playground: a page at `/` and its assets at `/playground/{name}`, files of this package.

Open routes, as the health probes are: the page holds no data; it calls the API with the key its
user enters. Each answer carries an ETag (a revalidation costs a 304) and a Content-Security-Policy
that lets the page reach nothing but this server: it works offline, and a model's output
rendered in it cannot call out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Request
from starlette.responses import Response

from foretell.errors import NotFound, echo

router = APIRouter(include_in_schema=False)

INDEX = "index.html"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: data:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@cache
def _names() -> frozenset[str]:
    """The files the page may load: this folder's, of the known kinds (not its Python code)."""
    folder = files(__package__)
    return frozenset(
        entry.name
        for entry in folder.iterdir()
        if entry.is_file() and not entry.name.startswith(".") and _kind(entry.name) in _TYPES
    )


def _kind(name: str) -> str:
    return name[name.rfind(".") :] if "." in name else ""


def asset(name: str) -> Asset | None:
    """One file of the playground; None for a name that is not one of them. Only the known
    names are read and kept, so that asking for others grows nothing."""
    return _read(name) if name in _names() else None


@cache
def _read(name: str) -> Asset:
    body = files(__package__).joinpath(name).read_bytes()
    return Asset(body, _TYPES[_kind(name)], f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def _answer(found: Asset, request: Request) -> Response:
    headers = {
        # Revalidated each time (a 304 while unchanged), so an upgraded server's page is
        # never mixed with an old script.
        "Cache-Control": "no-cache",
        "ETag": found.etag,
        "Content-Security-Policy": _POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if found.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)


@router.api_route("/", methods=["GET", "HEAD"])
async def page(request: Request) -> Response:
    """The playground's page."""
    found = asset(INDEX)
    assert found is not None, "the package ships index.html"
    return _answer(found, request)


@router.api_route("/playground/{name}", methods=["GET", "HEAD"])
async def playground_asset(name: str, request: Request) -> Response:
    """A script, style sheet or icon of the page."""
    found = asset(name)
    if found is None:
        raise NotFound(f"playground file '{echo(name)}' does not exist")
    return _answer(found, request)
