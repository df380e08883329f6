"""An error answer arrives as its typed error, from either client: the class from the status
(and, for a 503, whether it is about the model), with the status, code, message, the body as
sent, the fields of a refused input and the Retry-After."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from client_doubles import KINDS, Answers, FakeClock, refused, run

from foretell import errors as domain
from foretell.client import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    ForetellClientError,
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
from foretell.client.errors import parse_retry_after

FIELD_ERRORS = [
    {
        "type": "string_too_short",
        "loc": ["body", "input", "text"],
        "msg": "String should have at least 1 character",
        "input": "",
        "ctx": {"min_length": 1},
    },
    {
        "type": "less_than_equal",
        "loc": ["body", "input", "items", 2],
        "msg": "Input should be less than or equal to 10",
        "input": 11,
    },
]

NOT_READY = "model 'a/b' is not ready: deployment is x"
STOPPING = "the server is stopping; try again in 2 s"
# (status, detail, Retry-After, X-Error-Code), the class it arrives as, its code
CASES: list[tuple[tuple[Any, ...], type[ApiError], str]] = [
    ((400, "Prefer: wait=x is not an integer"), BadRequest, "invalid_request"),
    ((401, "no API key: send Authorization: Bearer <key>"), Unauthorized, "unauthenticated"),
    ((403, "this API key's scope is 'read'"), Forbidden, "forbidden"),
    ((404, "prediction 'nope' not found"), NotFound, "not_found"),
    ((409, "prediction 'p1' is already succeeded"), Conflict, "conflict"),
    ((410, "file 'f' was removed"), NotFound, "not_found"),
    ((413, "request body of 9 bytes is over the limit of 8"), PayloadTooLarge, "payload_too_large"),
    ((422, FIELD_ERRORS), InvalidInput, "invalid_input"),
    ((429, "model 'a/b' is overloaded", "3"), Overloaded, "overloaded"),
    ((503, NOT_READY, "5", "model_not_ready"), ModelNotReady, "model_not_ready"),
    ((503, "model 'a/b' failed to load: boom", "5", "model_load_failed"), ModelNotReady,
     "model_load_failed"),
    ((503, STOPPING, "2", "server_stopping"), Unavailable, "server_stopping"),
    ((503, STOPPING, "2"), Unavailable, "unavailable"),
    # Told by its code, never by its words: a message alone says nothing of its kind.
    ((503, NOT_READY, "5"), Unavailable, "unavailable"),
    ((500, "internal error (KeyError)"), ServerError, "server_error"),
    ((418, "short and stout"), ApiError, "api_error"),
]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("sent", "cls", "code"), CASES, ids=[f"{c[0][0]}-{c[1].__name__}" for c in CASES]
)
def test_each_status_arrives_as_its_typed_error(
    kind: str, sent: tuple[Any, ...], cls: type[ApiError], code: str
) -> None:
    answer = refused(*sent)  # a response is read once: a new one for each client
    answers = Answers(answer)
    with pytest.raises(ApiError) as caught:
        run(kind, answers, FakeClock(), lambda c: c.get_prediction("p1"), retry=Retry(attempts=1))

    error = caught.value
    assert type(error) is cls
    assert isinstance(error, ForetellClientError)
    assert isinstance(error, domain.ForetellError)
    assert (error.status, error.code) == (answer.status_code, code)
    assert error.body == answer.json()
    assert error.detail == answer.json()["detail"]
    assert error.message.startswith(f"HTTP {answer.status_code}: ")


def test_a_refused_input_names_each_field_and_what_is_wrong() -> None:
    answers = Answers(refused(422, FIELD_ERRORS))
    with pytest.raises(InvalidInput) as caught:
        run("sync", answers, FakeClock(), lambda c: c.create_prediction("a/b", {"text": ""}))

    assert caught.value.fields == {
        "text": "String should have at least 1 character",
        "items.2": "Input should be less than or equal to 10",
    }
    assert caught.value.errors == FIELD_ERRORS
    assert "body.input.text: String should have at least 1 character" in caught.value.message


def test_a_refused_request_body_field_keeps_its_place_outside_the_input() -> None:
    missing = [{"type": "missing", "loc": ["body", "model"], "msg": "Field required"}]
    with pytest.raises(InvalidInput) as caught:
        run("sync", Answers(refused(422, missing)), FakeClock(), lambda c: c.get_prediction("x"))

    assert caught.value.fields == {"body.model": "Field required"}


def test_a_422_with_a_message_and_no_fields_is_a_plain_api_error() -> None:
    answer = refused(422, "archive member 'a/../b': a path out of the folder")
    with pytest.raises(ApiError) as caught:
        run("sync", Answers(answer), FakeClock(), lambda c: c.get_prediction("x"))

    assert type(caught.value) is ApiError
    assert caught.value.status == 422


@pytest.mark.parametrize("kind", KINDS)
def test_retry_after_is_read_in_seconds(kind: str) -> None:
    answers = Answers(refused(429, "model 'a/b' is overloaded", "7"))
    with pytest.raises(Overloaded) as caught:
        run(kind, answers, FakeClock(), lambda c: c.get_prediction("p1"), retry=Retry(attempts=1))

    assert caught.value.retry_after == 7.0


def test_an_answer_that_is_not_json_keeps_its_text() -> None:
    answer = httpx.Response(502, text="<html>bad gateway</html>")
    with pytest.raises(ServerError) as caught:
        run("sync", Answers(answer), FakeClock(), lambda c: c.get_prediction("p1"))

    assert caught.value.detail == "<html>bad gateway</html>"
    assert caught.value.body == {"detail": "<html>bad gateway</html>"}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("12", 12.0),
        (" 0 ", 0.0),
        ("Mon, 07 Dec 2026 22:00:30 GMT", 30.0),
        ("Mon, 07 Dec 2026 21:00:00 GMT", 0.0),  # passed already: at once
        ("soon", None),
        ("-1", None),
        (None, None),
    ],
)
def test_retry_after_as_delta_seconds_or_an_http_date(value: str | None, seconds: Any) -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 7, 22, 0, 0, tzinfo=UTC)
    assert parse_retry_after(value, now) == seconds
