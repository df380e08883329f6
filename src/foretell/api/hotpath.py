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
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Receive, Scope, Send

from foretell.api.auth import authorize
from foretell.api.errors import error_response
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

    @classmethod
    async def from_request(cls, request: Request, caller: access.Principal) -> Call:
        """The FastAPI lane's way in, once its dependencies authorized `caller`."""
        state = request.app.state
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
        if matched is None:
            await self.app(scope, receive, send)
            return
        template, route, params = matched
        try:
            state = self.app.state
            headers = Headers(scope=scope)
            action = f"{scope['method']} {template}"
            anonymous = state.anonymous if route.anonymous else None
            caller = await authorize(state.authenticator, headers, route.scope, action, anonymous)
            body = await _body(receive)
            response = await route.handler(
                Call(state.service, state.settings, headers, body, caller, params)
            )
        except ClientDisconnect:  # nobody to answer; as api.errors does for FastAPI's routes
            log.debug("%s %s: the client left before its body was read", scope["method"], template)
            return
        except Exception as exc:
            response = error_response(exc, route.dialect)
        await response(scope, receive, send)


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
