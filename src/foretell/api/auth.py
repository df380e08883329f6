"""Every route's one way to learn who is calling and whether it may: `Authorized(scope)`.

FastAPI routes declare it as a dependency (`Reader`, `Predictor`, `Deployer`, `Admin`,
`PublicPredictor`); the fast lane calls `authorize` with its route's scope. Both end in the same
checks, so a route answers the same whichever lane served it, and the test that walks the app's
routes can find each one's scope. Open routes that show a key more than anyone (readiness) call
`identify`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from foretell.api.request_id import authenticated
from foretell.auth import Authenticator, carries_credential, credential
from foretell.domain.access import ANONYMOUS_ADMIN, Principal, Scope
from foretell.errors import Forbidden, RateLimited, StoreUnavailable, Unauthenticated


async def authorize(
    authenticator: Authenticator | None,
    headers: Mapping[str, str],
    scope: Scope,
    action: str,
    anonymous: Principal | None = None,
) -> Principal:
    """The caller, if its key is good and has `scope`; everyone is an admin without auth. A
    request that offers no key at all is `anonymous` where that is given, else refused."""
    if authenticator is None:
        return ANONYMOUS_ADMIN
    if anonymous is not None and not carries_credential(headers):
        return anonymous
    caller = await authenticator.principal(credential(headers))
    authenticated(caller.key_id)  # for the access log, refused or not
    if not caller.can(scope):
        raise Forbidden(caller.scope.value, scope.value, action)
    return caller


async def identify(
    authenticator: Authenticator | None, headers: Mapping[str, str]
) -> Principal | None:
    """Who calls an open route, for what it shows a key beyond what it shows anyone: the key's
    caller (everyone is an admin without auth), or None without a usable key. An open route
    never refuses, so a probe holding a stale key still learns whether the server is ready
    (nor does a key store that cannot be read: the caller is shown what anyone is)."""
    if authenticator is None:
        return ANONYMOUS_ADMIN
    if not carries_credential(headers):
        return None
    try:
        caller = await authenticator.principal(credential(headers))
    except (Unauthenticated, RateLimited, StoreUnavailable):
        return None
    authenticated(caller.key_id)
    return caller


# Declared so that OpenAPI marks every guarded operation and /docs offers "Authorize"; the
# header itself is read by `credential`, which also takes the other forms.
_BEARER = HTTPBearer(
    auto_error=False,
    description="An API key (foretell keys create). Also accepted: Authorization: Token <key>, "
    "Authorization: Api-Key <key>, X-API-Key: <key>.",
)


class Authorized:
    """A FastAPI dependency: the caller, if it may use a route that needs `scope`. With
    `anonymous`, a request without a key gets in as the app's anonymous caller, if it has one
    (`Settings.anonymous_public`)."""

    def __init__(self, scope: Scope, *, anonymous: bool = False) -> None:
        self.scope = scope
        self.anonymous = anonymous

    async def __call__(
        self,
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> Principal:
        route: Any = request.scope.get("route")
        action = f"{request.method} {getattr(route, 'path', request.url.path)}"
        state = request.app.state
        anonymous = state.anonymous if self.anonymous else None
        return await authorize(state.authenticator, request.headers, self.scope, action, anonymous)


Reader = Annotated[Principal, Depends(Authorized(Scope.READ))]
Predictor = Annotated[Principal, Depends(Authorized(Scope.PREDICT))]
# Push, load, unload, scale and rescan: the caller's own models (the service checks the owner).
Deployer = Annotated[Principal, Depends(Authorized(Scope.DEPLOY))]
Admin = Annotated[Principal, Depends(Authorized(Scope.ADMIN))]
# The dialects' synchronous prediction routes: the caller gets the answer and keeps nothing it
# could read back later, so with anonymous access on, one without a key may run public models.
PublicPredictor = Annotated[Principal, Depends(Authorized(Scope.PREDICT, anonymous=True))]
# GPUX's GET /info: seed 003's clients read it beside /predict, with no key to send; without
# one it describes only public default models, as a public model's own listing would.
PublicReader = Annotated[Principal, Depends(Authorized(Scope.READ, anonymous=True))]
