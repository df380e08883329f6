"""Which of GPUX's default models a request's inputs pick: the one whose inputs the body's keys
are (all its required ones, none it does not take); none or several is a 400 naming each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from foretell.api.dialects.gpux.defaults import choose, fits
from foretell.domain import DeploymentStatus
from foretell.errors import InvalidRequest, ModelNotReady
from foretell.manifest import Signature
from foretell.service import VersionView

TOKENS = {"input_ids": [101, 102], "attention_mask": [1, 1]}


def schema(*required: str, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    properties = {name: {"type": "string"} for name in (*required, *optional)}
    return {"type": "object", "properties": properties, "required": list(required)}


def model(
    ref: str,
    inputs: dict[str, Any] | None,
    status: DeploymentStatus = DeploymentStatus.READY,
) -> VersionView:
    """A version as the catalog shows it: its signature once loaded, None before or failed."""
    owner, name = ref.split("/")
    signature = Signature(inputs, {}) if inputs is not None else None
    now = datetime.now(UTC)
    return VersionView(owner, name, 1, "d", status, now, now, signature=signature)


SENTIMENT = model("demo/sentiment", schema("input_ids", "attention_mask"))
TEXT = model("demo/sentiment-text", schema("text"))
ECHO = model("acme/echo", schema("text", optional=("n",)))


@pytest.mark.parametrize(
    ("keys", "fit"),
    [
        ({"text"}, True),
        ({"text", "n"}, True),  # an optional input may come too
        ({"n"}, False),  # a required one is missing
        ({"text", "x"}, False),  # one the model does not take
        (set(), False),
    ],
)
def test_keys_fit_a_schema_with_every_required_input_and_nothing_else(
    keys: set[str], fit: bool
) -> None:
    assert fits(keys, schema("text", optional=("n",))) is fit


def test_each_request_goes_to_the_model_whose_inputs_it_sends() -> None:
    assert choose([SENTIMENT, TEXT], TOKENS) is SENTIMENT
    assert choose([SENTIMENT, TEXT], {"text": "I love GPUX!"}) is TEXT
    assert choose([TEXT, ECHO], {"text": "hi", "n": 2}) is ECHO


@pytest.mark.parametrize("body", [{"attention_mask": [1]}, {"text": "x", "n": 1}, [1], "text"])
def test_one_default_model_takes_every_request_as_before(body: Any) -> None:
    # Nothing is chosen: the model's own checks answer, in the seed's words.
    assert choose([SENTIMENT], body) is SENTIMENT


def test_inputs_of_no_default_model_are_400_naming_each_and_its_inputs() -> None:
    with pytest.raises(InvalidRequest) as refused:
        choose([SENTIMENT, ECHO], {"attention_mask": [1], "text": "x"})

    assert refused.value.message == (
        "the inputs sent (attention_mask, text) fit none of the default models: "
        "demo/sentiment takes input_ids, attention_mask; acme/echo takes text, optionally n; "
        "send every required input of one of them and nothing else, or call one by name: "
        "POST /models/{owner}/{name}/predict"
    )


def test_inputs_of_several_default_models_are_400_naming_those() -> None:
    with pytest.raises(InvalidRequest) as refused:
        choose([SENTIMENT, TEXT, ECHO], {"text": "hi"})

    assert refused.value.message == (
        "the inputs sent (text) fit several default models: demo/sentiment-text takes text; "
        "acme/echo takes text, optionally n; call one by name: POST /models/{owner}/{name}/predict"
    )


@pytest.mark.parametrize("body", [["I love GPUX!"], "text", None])
def test_a_body_that_is_not_an_object_of_inputs_is_400(body: Any) -> None:
    with pytest.raises(InvalidRequest, match="request body must be a JSON object of named inputs"):
        choose([SENTIMENT, TEXT], body)


def test_while_a_default_model_loads_a_request_that_fits_no_other_is_not_ready() -> None:
    loading = model("acme/slow", None, DeploymentStatus.DEPLOYING)

    with pytest.raises(ModelNotReady) as waiting:
        choose([TEXT, loading], {"x": 1})  # its inputs are unknown yet: may be meant for it

    assert waiting.value.message == "model 'acme/slow:1' is not ready: deployment is deploying"
    assert choose([TEXT, loading], {"text": "hi"}) is TEXT  # the others answer meanwhile


def test_a_default_model_that_failed_to_load_is_named_but_never_chosen() -> None:
    failed = model("acme/broken", None, DeploymentStatus.FAILED)

    with pytest.raises(InvalidRequest) as refused:
        choose([failed, TEXT], {"x": 1})

    assert refused.value.message.startswith(
        "the inputs sent (x) fit none of the default models: acme/broken (failed to load; its "
        "inputs are unknown); demo/sentiment-text takes text;"
    )
    assert choose([failed, TEXT], {"text": "hi"}) is TEXT
