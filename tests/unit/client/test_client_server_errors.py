"""The server's own errors, answered by its one mapping (api/errors.py), arrive at the client
as the right typed error, and only those refused before a record existed make a create be sent
again: the client's table checked against the server's, not against a copy of it."""

from __future__ import annotations

import httpx
import pytest
from client_doubles import Answers, FakeClock, record, run

from foretell import errors
from foretell.api.errors import error_response
from foretell.client import (
    ApiError,
    BadRequest,
    Client,
    Conflict,
    Forbidden,
    InvalidInput,
    ModelNotReady,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    Retry,
    ServerError,
    Unauthorized,
    Unavailable,
)

FIELD = {"type": "missing", "loc": ["input", "text"], "msg": "Field required", "input": {}}

# The server's error, the client's class, whether a refused create is sent again.
CASES: list[tuple[errors.ForetellError, type[ApiError], bool]] = [
    (errors.InvalidRequest("field 'x' is not a number"), BadRequest, False),
    (errors.InvalidPreference("Prefer: wait=99 is out of range"), BadRequest, False),
    (errors.PayloadTooLarge(9, 8, "max_body_bytes"), PayloadTooLarge, False),
    (errors.InvalidInput([FIELD]), InvalidInput, False),
    (errors.Unauthenticated("invalid API key"), Unauthorized, False),
    (errors.Forbidden("read", "predict", "creating a prediction"), Forbidden, False),
    (errors.ModelNotFound("a/b"), NotFound, False),
    (errors.PredictionNotFound("p1"), NotFound, False),
    (errors.FileGone("f1", "2026-12-07T00:00:00Z", "its retention passed"), NotFound, False),
    (errors.PredictionFinished("p1", "succeeded"), Conflict, False),
    (errors.Overloaded("a/b", 8, retry_after_s=2), Overloaded, True),
    (errors.RateLimited("k1", 5.0, 10, 0.3), Overloaded, True),
    (errors.TooManyUnfinished("me", 100), Overloaded, True),
    (errors.ModelNotReady("a/b:1", "deploying"), ModelNotReady, True),
    (errors.ModelLoadFailed("a/b:1", "setup raised"), ModelNotReady, True),
    (errors.ServerStopping(2), Unavailable, True),
    (errors.ConnectionsFull(100), Unavailable, True),
    (errors.BodiesInFlightFull(10, 90, 100), Unavailable, True),
    (errors.ServerStopping(2, "p9"), Unavailable, False),  # its record kept: not again
    (errors.StoreUnavailable("sqlite:///x.db", "disk I/O error"), Unavailable, False),
    (errors.StorageFull(10, 90, 100), ServerError, False),
]


def answered(exc: errors.ForetellError) -> httpx.Response:
    """What the server sends for `exc`: its status, headers and body as rendered."""
    response = error_response(exc)
    headers = [(k.decode(), v.decode()) for k, v in response.raw_headers]
    return httpx.Response(response.status_code, headers=headers, content=bytes(response.body))


IDS = [f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize(("exc", "cls", "again"), CASES, ids=IDS)
def test_the_servers_error_arrives_as_its_typed_error(
    exc: errors.ForetellError, cls: type[ApiError], again: bool
) -> None:
    answers = Answers(answered(exc))
    with pytest.raises(ApiError) as caught:
        run("sync", answers, FakeClock(), lambda c: c.get_prediction("p1"), retry=Retry(attempts=1))

    assert type(caught.value) is cls
    if not isinstance(caught.value, InvalidInput):
        assert caught.value.detail == exc.message
    expected = getattr(exc, "retry_after_s", None)
    assert caught.value.retry_after == (float(expected) if expected is not None else None)


@pytest.mark.parametrize(("exc", "cls", "again"), CASES, ids=IDS)
def test_a_create_is_sent_again_only_when_refused_before_its_record(
    exc: errors.ForetellError, cls: type[ApiError], again: bool
) -> None:
    created = httpx.Response(201, json=record("starting"))
    answers = Answers(answered(exc), created)

    def create(client: Client) -> bool:
        try:
            client.create_prediction("a/b", {"n": 1})
        except ApiError:
            return False
        return True

    assert run("sync", answers, FakeClock(), create) is again
    assert len(answers.requests) == (2 if again else 1)
