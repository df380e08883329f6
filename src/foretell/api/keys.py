"""API key management under /v1/keys, for admin keys: make, list and revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from starlette.responses import Response

from foretell.api import state
from foretell.api.auth import Admin
from foretell.api.body import documented, parse_body
from foretell.api.dialects.native.render import timestamp
from foretell.api.openapi import errors
from foretell.api.responses import Json
from foretell.auth import KeyManager
from foretell.auth.keys import (
    MAX_BURST,
    MAX_LIFETIME_DAYS,
    MAX_LIFETIME_S,
    MAX_RATE_PER_S,
    MIN_RATE_PER_S,
    reserved_owner_problem,
)
from foretell.domain.access import ApiKey, Scope

router = APIRouter(prefix="/v1/keys", tags=["keys"])


def _burst_in_range(value: Any) -> Any:
    # orjson reads an integer past 64 bits as a float, which pydantic cannot make an int of
    # ("exceeded maximum size"): name the limit instead, as `le` does for smaller ones.
    if isinstance(value, float) and value > MAX_BURST:
        raise PydanticCustomError(
            "less_than_equal", "Input should be less than or equal to {le}", {"le": MAX_BURST}
        )
    return value


class KeyRequest(BaseModel):
    # Strict: `"expires_in_s": true` made a key that expired in 1 s and `"burst": "5"` passed;
    # a key's settings take exactly the JSON types its schema publishes.
    model_config = ConfigDict(extra="forbid", strict=True)

    owner: str = Field(description="whose models it runs and whose predictions it sees")
    scope: Literal["read", "predict", "deploy", "admin"] = Field(
        description="read: models and its owner's predictions; predict: also create and cancel; "
        "deploy: also push, load, unload and scale its owner's models; "
        "admin: everything, every owner, and keys"
    )
    name: str = Field("", max_length=128, description="what it is for, e.g. ci")
    expires_in_s: float | None = Field(
        None,
        gt=0,
        le=MAX_LIFETIME_S,
        description=f"seconds until it stops working, at most {MAX_LIFETIME_DAYS} days; "
        "leave it out for a key that never expires",
    )
    rate_per_s: float | None = Field(
        None, ge=MIN_RATE_PER_S, le=MAX_RATE_PER_S, description="requests per second it may make"
    )
    burst: Annotated[int | None, BeforeValidator(_burst_in_range)] = Field(
        None, ge=1, le=MAX_BURST, description="requests it may make at once"
    )

    @model_validator(mode="after")
    def _owner_not_reserved(self) -> KeyRequest:
        problem = reserved_owner_problem(self.owner, Scope(self.scope))
        if problem is not None:  # raised as the owner's error, where a field validator's goes
            error = PydanticCustomError("owner_reserved", problem)
            raise ValidationError.from_exception_data(
                "KeyRequest", [InitErrorDetails(type=error, loc=("owner",), input=self.owner)]
            )
        return self


def render_key(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "owner": key.owner,
        "scope": key.scope.value,
        "created_at": timestamp(key.created_at),
        "expires_at": timestamp(key.expires_at),
        "revoked_at": timestamp(key.revoked_at),
        "last_used_at": timestamp(key.last_used_at),
        "rate_per_s": key.rate_per_s,
        "burst": key.burst,
    }


def _keys(request: Request) -> KeyManager:
    found: KeyManager = request.app.state.keys
    return found


@router.post("", status_code=201, openapi_extra=documented(KeyRequest))
async def create_key(request: Request, caller: Admin) -> Response:
    """Make a key; the answer's `key` is the only time it is shown."""
    depth = state.settings(request).max_json_depth
    body = parse_body(await request.body(), KeyRequest, max_depth=depth)
    made = await _keys(request).create(
        owner=body.owner,
        scope=Scope(body.scope),
        name=body.name,
        expires_in=timedelta(seconds=body.expires_in_s) if body.expires_in_s else None,
        rate_per_s=body.rate_per_s,
        burst=body.burst,
    )
    return Json({**render_key(made.record), "key": made.key}, status_code=201)


@router.get("")
async def list_keys(request: Request, caller: Admin) -> Response:
    return Json({"results": [render_key(k) for k in await _keys(request).list()]})


@router.delete("/{key_id}", responses=errors(404))
async def revoke_key(key_id: str, request: Request, caller: Admin) -> Response:
    """Revoke a key by id or prefix; it stops working at once."""
    return Json(render_key(await _keys(request).revoke(key_id)))
