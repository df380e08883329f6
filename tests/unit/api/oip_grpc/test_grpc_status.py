"""Domain errors → gRPC status codes, once (api.oip_grpc.status)."""

from __future__ import annotations

import logging

import grpc
import pytest

from foretell import errors
from foretell.api.oip_grpc import status


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidRequest("bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.InvalidInput([{"loc": ["x"], "msg": "bad"}]), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.ModelNotFound("demo/nope"), grpc.StatusCode.NOT_FOUND),
        (errors.Unauthenticated("no key"), grpc.StatusCode.UNAUTHENTICATED),
        (errors.Forbidden("read", "predict", "gRPC ModelInfer"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.ModelNotReady("demo/x:1", "deploying"), grpc.StatusCode.UNAVAILABLE),
        (errors.Overloaded("demo/x:1", 10), grpc.StatusCode.UNAVAILABLE),
        (errors.RateLimited("k1", 5, 10, 0.2), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.WorkerCrashed("demo/x:1", None, "replica died"), grpc.StatusCode.INTERNAL),
    ],
)
def test_each_error_has_its_code(error: errors.ForetellError, code: grpc.StatusCode) -> None:
    assert status.of(error, "ModelInfer")[0] is code


def test_an_error_that_says_when_to_retry_carries_it_as_a_trailer() -> None:
    _, details, trailer = status.of(errors.ModelNotReady("demo/x:1", "deploying"), "ModelInfer")

    assert details == "model 'demo/x:1' is not ready: deployment is deploying"
    assert trailer == (("retry-after", "5"),)


def test_an_unexpected_error_is_internal_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        code, details, trailer = status.of(KeyError("x"), "ModelInfer")

    assert (code, details, trailer) == (
        grpc.StatusCode.INTERNAL,
        "internal error (KeyError); the server log has the details",
        (),
    )
    assert "unexpected error answering ModelInfer" in caplog.text
