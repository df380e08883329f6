"""Every error answer of foretell's own names its kind in X-Error-Code, in every dialect, beside
the body its seed prescribes: clients tell errors apart by it, never by parsing the message."""

from __future__ import annotations

import pytest

import foretell.api.app  # noqa: F401  (its routers register their dialects' renderers)
from foretell import errors
from foretell.api.errors import ERROR_CODE, error_response

ERRORS = [
    errors.ModelNotReady("demo/iris:1", "deploying"),
    errors.PredictionNotFound("p1"),
    errors.StoreUnavailable("sqlite:///x", "locked", 2),
    errors.InvalidInput([{"loc": ["text"], "msg": "short", "type": "too_short"}]),
]


@pytest.mark.parametrize("dialect", [None, "oip-v2", "baseten", "gpux", "slashml", "spice"])
@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_an_error_answer_names_its_code(dialect: str | None, error: errors.ForetellError) -> None:
    response = error_response(error, dialect)

    assert response.headers[ERROR_CODE] == error.code
