"""OIP v2's generate extension, its pure parts: a generate request as the model's input, and a
prediction's stream events as generate_stream's `data:` objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from foretell.api.dialects.oip_v2.generate import GenerateRequest, _render, _wire, model_input
from foretell.domain import OutputStream
from foretell.errors import InvalidRequest
from foretell.service.stream import StreamEvent
from foretell.service.stream import cut as stream_cut

NAMED = {"model_name": "demo/tiny-gpt2", "model_version": "1"}


def schema(*names: str) -> dict[str, Any]:
    return {"type": "object", "properties": {n: {} for n in names}}


def asked(**body: Any) -> GenerateRequest:
    return GenerateRequest.model_validate(body)


def data(chunk: bytes | None) -> Any:
    assert chunk is not None
    assert chunk.startswith(b"data: ")
    assert chunk.endswith(b"\n\n")
    return json.loads(chunk.removeprefix(b"data: "))


@pytest.mark.parametrize(
    ("inputs", "into"),
    [
        (("text_input", "prompt"), "text_input"),  # the model's own text_input first
        (("prompt", "max_new_tokens"), "prompt"),
        (("text", "top_k"), "text"),
    ],
)
def test_text_input_goes_to_the_model_s_text_input(inputs: tuple[str, ...], into: str) -> None:
    assert model_input(asked(text_input="hi"), schema(*inputs)) == {into: "hi"}


def test_parameters_the_model_takes_are_inputs_and_the_others_are_ignored() -> None:
    body = asked(
        text_input="hi",
        parameters={"max_new_tokens": 4, "stream": True, "temperature": 0},
        seed=7,
    )
    taken = model_input(body, schema("prompt", "max_new_tokens"))
    assert taken == {"prompt": "hi", "seed": 7, "max_new_tokens": 4}
    # A field of the body wins over a parameter of the same name.
    body = asked(text_input="hi", max_new_tokens=2, parameters={"max_new_tokens": 4})
    assert model_input(body, schema("prompt", "max_new_tokens"))["max_new_tokens"] == 2


def test_a_model_without_a_text_input_is_refused_naming_its_inputs() -> None:
    with pytest.raises(InvalidRequest) as refused:
        model_input(asked(text_input="hi"), schema("features"))
    assert "text_input" in refused.value.message
    assert "features" in refused.value.message


def test_output_events_become_text_output_whatever_the_stream_mode() -> None:
    text = StreamEvent("output", ' "quoted" piece', "9-0-2")
    assert data(_render(text, OutputStream.TEXT, NAMED)) == {
        "text_output": ' "quoted" piece',
        **NAMED,
    }
    item = StreamEvent("output", '"one item"', "1-0-2")
    assert data(_render(item, OutputStream.ITEMS, NAMED))["text_output"] == "one item"
    whole = StreamEvent("output", '{"words": 3, "characters": 9}', "1-0-2")
    assert data(_render(whole, None, NAMED)) == {"words": 3, "characters": 9, **NAMED}
    numbers = StreamEvent("output", "[1, 2]", "1-0-2")
    assert data(_render(numbers, None, NAMED))["text_output"] == "[1,2]"


def test_a_failure_a_cut_and_a_cancel_are_error_objects_the_rest_is_not_sent() -> None:
    failed = json.dumps({"status": "failed", "error": {"source": "model", "message": "boom"}})
    assert data(_render(StreamEvent("error", failed, "3-0-3"), None, NAMED)) == {"error": "boom"}
    cut = StreamEvent("error", json.dumps({"reason": "fell behind", "resume": True}), None)
    assert "fell behind" in data(_render(cut, None, NAMED))["error"]
    assert "stalled" in data(_wire(stream_cut("stalled")))["error"]
    canceled = StreamEvent("done", '{"status": "canceled"}', "3-0-4")
    assert "canceled" in data(_render(canceled, None, NAMED))["error"]
    for quiet in (
        StreamEvent("done", '{"status": "succeeded"}', "3-0-4"),
        StreamEvent("done", '{"status": "failed"}', "3-0-4"),
        StreamEvent("status", '{"status": "processing"}', "0-0-2"),
        StreamEvent("logs", "a line", "0-6-2"),
    ):
        assert _render(quiet, OutputStream.TEXT, NAMED) is None
