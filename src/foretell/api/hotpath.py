"""The prediction routes' fast lane: their (method, path) matches skip FastAPI's routing.

Measured in-process on the digits model, FastAPI's router, dependency solving and exception
layers cost about three times what creating the prediction does (py-spy: 17% of samples in
FastAPI's call stack, 4.5% in the endpoint); on OIP's infer route, with its path parameters
and a dozen routers to walk first, FastAPI took 35% of the server's samples. The few routes on
the hot path are therefore handled here, by the same handler functions their FastAPI routes
call: FastAPI still declares them (OpenAPI, /docs) and serves every other route. A path
template is compiled by Starlette's own `compile_path`, so it matches exactly what FastAPI's
route would. Errors render through `api.errors` in the route's dialect, so a request gets the
same answer whichever lane it took.

A hot route is declared once, by `hot_route`: that registers its FastAPI route and marks it for
the fast lane, which `hot_routes` finds on the app, with its scope, anonymous access and dialect
taken from the one declaration. FastAPI middleware would run for FastAPI's routes and silently
not for these, so `hot_routes` refuses an app that has any (wrap the server's stack instead,
api.app.front), as it refuses dependencies added to a hot route by its router or its include.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Receive, Scope, Send

from foretell.api.auth import Authorized, authorize
from foretell.api.errors import dialect_of_tags, error_response
from foretell.api.limits import is_upload
from foretell.config import Settings
from foretell.domain import access
from foretell.service import PredictionService

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Call:
    """What a route handler reads from a request, whichever lane it came in by."""

    service: PredictionService
    settings: Settings
    headers: Headers
    body: bytes
    caller: access.Principal
    params: Mapping[str, str] = field(default_factory=dict)  # the path's parameters
    # An upload's body (limits.is_upload: a multipart create), streamed instead of `body`.
    stream: AsyncIterator[bytes] | None = None

    @classmethod
    async def from_request(cls, request: Request, caller: access.Principal) -> Call:
        """The FastAPI lane's way in, once its dependencies authorized `caller`."""
        state = request.app.state
        if is_upload(request.method, request.scope["path"], request.scope["headers"]):
            return cls(
                state.service,
                state.settings,
                request.headers,
                b"",
                caller,
                request.path_params,
                request.stream(),
            )
        body = await request.body()
        return cls(
            state.service, state.settings, request.headers, body, caller, request.path_params
        )


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class HotRoute:
    handler: Handler
    scope: access.Scope  # what its FastAPI route's `Authorized` dependency asks for
    dialect: str | None = None  # whose error shapes it answers in (its router's tag)
    anonymous: bool = False  # as its `Authorized(anonymous=...)`: may come in without a key


# (method, path or path template such as "/v2/models/{owner}/{name}/infer") -> route
HotRoutes = Mapping[tuple[str, str], HotRoute]

# FastAPI endpoint made by `hot_route` -> its fast lane entry (the dialect is the route's tag).
_DECLARED: dict[Callable[..., Any], HotRoute] = {}
_PARAMETER = re.compile(r"{(\w+)}")


def hot_route(
    router: APIRouter,
    method: str,
    path: str,
    handler: Handler,
    *,
    scope: access.Scope,
    anonymous: bool = False,
    headers: Mapping[str, Any] | None = None,
    **declared: Any,
) -> None:
    """Declare `handler` as the hot route `method` `router.prefix + path`, once for both lanes:
    FastAPI's route (OpenAPI, /docs, an ASGI server without the lane) calls it with the request
    as a `Call`, and `hot_routes` finds it for the fast lane. `scope` and `anonymous` are its
    `Authorized` guard's. `headers` documents the request headers it reads, as FastAPI
    parameters ({"prefer": Annotated[str | None, Header(...)]}); its path's parameters are
    documented from the path; `declared` is the rest of `APIRouter.add_api_route`'s arguments.
    """

    async def endpoint(request: Request, caller: access.Principal, **_: Any) -> Response:
        return await handler(await Call.from_request(request, caller))

    guard = Annotated[access.Principal, Depends(Authorized(scope, anonymous=anonymous))]
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter("request", keyword, annotation=Request),
        inspect.Parameter("caller", keyword, annotation=guard),
        *(inspect.Parameter(p, keyword, annotation=str) for p in _PARAMETER.findall(path)),
        *(
            inspect.Parameter(name, keyword, annotation=kind, default=None)
            for name, kind in (headers or {}).items()
        ),
    ]
    # What FastAPI reads to learn the route's parameters and dependencies (inspect.signature).
    endpoint.__signature__ = inspect.Signature(parameters, return_annotation=Response)  # type: ignore[attr-defined]
    endpoint.__name__ = endpoint.__qualname__ = declared.pop("name", handler.__name__)
    _DECLARED[endpoint] = HotRoute(handler, scope, anonymous=anonymous)
    router.add_api_route(path, endpoint, methods=[method], **declared)


def hot_routes(app: FastAPI) -> dict[tuple[str, str], HotRoute]:
    """The hot routes `app` serves: those declared by `hot_route` on the routers it includes.

    Raises RuntimeError where the fast lane would skip what FastAPI's route runs: middleware on
    the app, or dependencies that a router or its include adds to a hot route."""
    if app.user_middleware:
        names = ", ".join(getattr(m.cls, "__name__", repr(m.cls)) for m in app.user_middleware)
        raise RuntimeError(
            f"middleware on the FastAPI app ({names}) would not run for its hot routes, which "
            "the fast lane serves without FastAPI (api.hotpath, api.lane); wrap the server's "
            "stack in api.app.front instead"
        )
    found: dict[tuple[str, str], HotRoute] = {}
    for prefix, added, route in _api_routes(app.routes, "", False):
        hot = _DECLARED.get(route.endpoint)
        if hot is None:
            continue
        methods = route.methods or set()
        if added or route.dependencies:
            raise RuntimeError(
                f"hot route {' '.join(sorted(methods))} {route.path} has dependencies beyond its "
                "guard, which its fast lane would skip; declare what it needs in its handler"
            )
        hot = replace(hot, dialect=dialect_of_tags(route.tags))
        found |= {(method, prefix + route.path_format): hot for method in methods}
    return found


def _api_routes(
    routes: Iterable[Any], prefix: str, added: bool
) -> Iterator[tuple[str, bool, APIRoute]]:
    """Every APIRoute under `routes` with the prefix and whether dependencies its includes add."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix, added, route
        included = getattr(route, "original_router", None)  # FastAPI includes routers lazily
        if included is not None:
            context = getattr(route, "include_context", None)
            extra = bool(getattr(context, "dependencies", None))
            more = getattr(context, "prefix", "")
            yield from _api_routes(included.routes, prefix + more, added or extra)


class HotPaths:
    """ASGI wrapper: serve `routes` directly; pass everything else (lifespan too) to `app`.

    A templated route must be the first FastAPI route its paths match (tests check each)."""

    def __init__(self, app: FastAPI, routes: HotRoutes) -> None:
        self.app = app
        self.exact = {key: r for key, r in routes.items() if "{" not in key[1]}
        self.templated: list[tuple[str, re.Pattern[str], str, HotRoute]] = [
            (method, compile_path(path)[0], path, route)
            for (method, path), route in routes.items()
            if "{" in path
        ]

    def match(self, method: str, path: str) -> tuple[str, HotRoute, dict[str, str]] | None:
        """The route for a request, with its template and path parameters; None: FastAPI's."""
        route = self.exact.get((method, path))
        if route is not None:
            return path, route, {}
        for wanted, pattern, template, route in self.templated:
            if wanted == method and (found := pattern.match(path)) is not None:
                return template, route, found.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = None
        if scope["type"] == "http":
            matched = self.match(scope["method"], scope["path"])
            if matched is not None and is_upload(scope["method"], scope["path"], scope["headers"]):
                matched = None  # streamed by FastAPI's route, never read whole (limits.is_upload)
        if matched is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        response = await self.answer(scope["method"], matched, headers, lambda: _body(receive))
        if response is not None:
            await response(scope, receive, send)

    async def answer(
        self,
        method: str,
        matched: tuple[str, HotRoute, dict[str, str]],
        headers: Headers,
        read_body: Callable[[], Awaitable[bytes]],
    ) -> Response | None:
        """The answer to a request for a hot route, reading its body with `read_body` once its
        caller may send one; None if the client left before it was read (ClientDisconnect).
        Whichever server lane calls it (this ASGI one, or api.lane), the answer is the same."""
        template, route, params = matched
        try:
            state = self.app.state
            action = f"{method} {template}"
            anonymous = state.anonymous if route.anonymous else None
            caller = await authorize(state.authenticator, headers, route.scope, action, anonymous)
            body = await read_body()
            return await route.handler(
                Call(state.service, state.settings, headers, body, caller, params)
            )
        except ClientDisconnect:  # nobody to answer; as api.errors does for FastAPI's routes
            log.debug("%s %s: the client left before its body was read", method, template)
            return None
        except Exception as exc:
            return error_response(exc, route.dialect)


async def _body(receive: Receive) -> bytes:
    chunks: list[Any] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":  # never handled as if the body were whole
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
