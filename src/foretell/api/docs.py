"""/openapi.json with the models served, and /docs (Swagger UI) and /redoc with their scripts,
styles and icon served by this server.

FastAPI's own pages load them from a CDN, and Redoc its fonts from Google: blank pages on a
machine without internet, which is every air-gapped install. The files come from the
`fastapi-offline` package (MIT; Swagger UI under Apache 2.0, Redoc under MIT), under a path that
carries its version, so a browser may keep them for good and an upgrade is fetched anew."""

from __future__ import annotations

import json
from html import escape
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html
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
    "dom_id": "#swagger-ui",
    "layout": "BaseLayout",
    "deepLinking": True,
    "showExtensions": True,
    "showCommonExtensions": True,
    # Swagger UI otherwise shows a badge fetched from validator.swagger.io for a spec not
    # served from localhost: a request to another origin.
    "validatorUrl": None,
    "persistAuthorization": True,  # the key entered in "Authorize" survives a reload
}
# The document a key may see (its private models too) once that key is entered in "Authorize":
# Swagger UI keeps it in localStorage (persistAuthorization), and fetches the document again on
# a reload.
_WITH_KEY = """
function withKey(request) {
  if (request.url.split("?")[0].endsWith(%s)) {
    const kept = JSON.parse(localStorage.getItem("authorized") || "{}");
    const key = kept.HTTPBearer && kept.HTTPBearer.value;
    if (key) request.headers.Authorization = "Bearer " + key;
  }
  return request;
}
"""


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
        page = _swagger_html(f"{app.title} - Swagger UI", root, root + openapi_url)
        return HTMLResponse(page, headers={"Content-Security-Policy": _CSP})

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


def _swagger_html(title: str, root: str, openapi_url: str) -> str:
    """FastAPI's Swagger UI page, with a request interceptor (a function: FastAPI's page takes
    only JSON parameters) that sends the authorized key when it fetches the document."""
    parameters = {"url": openapi_url, **_SWAGGER}
    settings = _script_json(parameters)[:-1] + ', "requestInterceptor": withKey, "presets": ['
    return f"""<!DOCTYPE html>
<html>
<head>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link type="text/css" rel="stylesheet" href="{escape(root + ASSETS)}/swagger-ui.css">
<link rel="shortcut icon" href="{escape(root + ASSETS)}/favicon.png">
<title>{escape(title)}</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{escape(root + ASSETS)}/swagger-ui-bundle.js"></script>
<script>
{_WITH_KEY % _script_json(openapi_url)}
const ui = SwaggerUIBundle({settings}
  SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset
]}});
</script>
</body>
</html>
"""


def _script_json(value: object) -> str:
    """`value` as JSON that cannot end the <script> it is written in."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
