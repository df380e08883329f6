"""/docs (Swagger UI) and /redoc with their scripts, styles and icon served by this server.

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
_SWAGGER = {
    # Swagger UI otherwise shows a badge fetched from validator.swagger.io for a spec not
    # served from localhost: a request to another origin.
    "validatorUrl": None,
    "persistAuthorization": True,  # the key entered in "Authorize" survives a reload
}


def install(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets; `app` must be made with docs_url=None and
    redoc_url=None (FastAPI's own pages would load them from a CDN)."""
    folder = Path(str(files(_PACKAGE).joinpath("static")))
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            swagger_ui_parameters=_SWAGGER,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media_type = _TYPES.get(name)
        if media_type is None:  # only the four files: never a path into the package
            raise NotFound(f"no docs asset '{echo(name)}': there are {', '.join(sorted(_TYPES))}")
        return FileResponse(folder / name, media_type=media_type, headers=_CACHED)
