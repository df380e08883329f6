"""/openapi.json with the models served, and /docs (Swagger UI) and /redoc with their scripts,
styles and icon served by this server.

FastAPI's own pages load them from a CDN, and Redoc its fonts from Google: blank pages on a
machine without internet, which is every air-gapped install. The files come from the
`fastapi-offline` package (MIT; Swagger UI under Apache 2.0, Redoc under MIT), under a path that
carries its version, so a browser may keep them for good and an upgrade is fetched anew."""

from __future__ import annotations

from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from foretell.api.auth import identify
from foretell.api.openapi_models import Shown, shown, with_models
from foretell.domain.access import ANONYMOUS, Principal
from foretell.errors import NotFound, echo

_PACKAGE = "fastapi_offline"
ASSETS = f"/docs/assets/{version(_PACKAGE)}"
_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# The path names the package's version: its files never change under it.
_CACHED = {"Cache-Control": "public, max-age=31536000, immutable"}
# The pages may load nothing from another origin, whatever their scripts try: Redoc's sidebar
# shows a logo from cdn.redoc.ly, which this blocks (it hides itself when it cannot load).
# Inline: FastAPI's page starts Swagger UI with an inline script; both set inline styles.
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
)
_SWAGGER = {
    # Swagger UI otherwise shows a badge fetched from validator.swagger.io for a spec not
    # served from localhost: a request to another origin.
    "validatorUrl": None,
    "persistAuthorization": True,  # the key entered in "Authorize" survives a reload
}


OPENAPI = "/openapi.json"
_VIEWERS = 64  # documents kept, one per viewer (an owner, or admin): past it, all are rebuilt


class _Documents:
    """The document each viewer is shown, rebuilt only when the models it shows changed."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.kept: dict[tuple[bool, str], tuple[Shown, bytes]] = {}

    def document(self, viewer: Principal) -> bytes:
        base = self.app.openapi()
        service = getattr(self.app.state, "service", None)
        if service is None:  # not started (app.openapi() alone): no models yet
            return with_models(base, [])
        models = service.catalog.models(viewer)
        now = shown(models)
        key = (viewer.admin, viewer.owner)
        kept = self.kept.get(key)
        if kept is not None and kept[0] == now:
            return kept[1]
        if len(self.kept) >= _VIEWERS:
            self.kept.clear()
        document = with_models(base, models)
        self.kept[key] = (now, document)
        return document


def install(app: FastAPI) -> None:
    """Serve /openapi.json, /docs, /redoc and the pages' assets; `app` must be made with
    openapi_url, docs_url and redoc_url None (FastAPI's pages would load them from a CDN, and
    its document would not know the models)."""
    folder = Path(str(files(_PACKAGE).joinpath("static")))
    openapi_url = OPENAPI
    documents = _Documents(app)

    @app.get(OPENAPI, include_in_schema=False)
    async def openapi(request: Request) -> Response:
        """The document, with the models its caller may see: without a key (as /docs asks),
        those anyone may (all of them without auth, else the public ones)."""
        authenticator = getattr(request.app.state, "authenticator", None)  # None: not started
        caller = await identify(authenticator, request.headers)
        document = documents.document(caller or ANONYMOUS)
        return Response(document, media_type="application/json")

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            swagger_ui_parameters=_SWAGGER,
        )
        page.headers["Content-Security-Policy"] = _CSP
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = _CSP
        return page

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media_type = _TYPES.get(name)
        if media_type is None:  # only the four files: never a path into the package
            raise NotFound(f"no docs asset '{echo(name)}': there are {', '.join(sorted(_TYPES))}")
        return FileResponse(folder / name, media_type=media_type, headers=_CACHED)
