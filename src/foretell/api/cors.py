"""CORS: the origins whose pages may call this API from a browser (`Settings.cors_origins`).

Starlette's middleware around the whole server stack, not FastAPI's: the hot routes skip
FastAPI's middleware, and the fast lane the ASGI stack altogether, so with CORS on a request
that carries an Origin header (a browser's cross-origin one) takes the ASGI stack and this
(`crosses`); requests without one, every non-browser client's, keep the fast lane."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

# What the API's clients send beyond the CORS-safelisted headers.
ALLOWED_HEADERS = (
    "Authorization",  # the key; never a cookie, so no credentials mode is needed
    "X-API-Key",
    "Content-Type",
    "Content-Encoding",
    "Prefer",
    "Validate-Input",
    "Cancel-After",
    "Last-Event-ID",  # a stream resumed
    "If-None-Match",
    "If-Range",
    "Range",
    "X-Request-Id",
    "traceparent",
    "tracestate",
    "Inference-Header-Content-Length",  # OIP v2's binary tensors
)
# What a page's script may read of an answer beyond the safelisted ones.
EXPOSED_HEADERS = (
    "Location",
    "X-Prediction-Id",
    "Retry-After",
    "X-Error-Code",  # api.errors.ERROR_CODE: what kind of error an answer is
    "Preference-Applied",
    "X-Request-Id",
    "ETag",
    "Content-Range",
    "Accept-Ranges",
    "Content-Disposition",
    "WWW-Authenticate",
    "Inference-Header-Content-Length",
)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PREFLIGHT_MAX_AGE_S = 600  # Chromium's own cap is 2 hours; a changed setting reaches pages soon


def cross_origin(app: ASGIApp, origins: list[str]) -> ASGIApp:
    """`app`, answering preflights and adding CORS headers for `origins`; `app` itself
    without any (no CORS header is sent at all)."""
    if not origins:
        return app
    return CORSMiddleware(
        app,
        allow_origins=origins,
        allow_methods=METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE_S,
    )


def crosses(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request (its raw ASGI headers) names an Origin: a browser's cross-origin
    request, which the CORS middleware must see."""
    return any(name == b"origin" for name, _ in headers)
