"""The messages between a replica and its parent: a closed set, each crossing a real socket pair
unchanged, and immutable once sent."""

from __future__ import annotations

import dataclasses
import multiprocessing
import pickle
import pickletools
import typing

import pytest
from worker_doubles import SIGNATURE, version

from foretell.domain import OutputStream
from foretell.workers import protocol
from foretell.workers.protocol import (
    Chunk,
    Done,
    Large,
    Outcome,
    Predict,
    Ready,
    Setup,
    SetupFailed,
    Shutdown,
    ToChild,
    ToParent,
)

MESSAGES = [
    Setup(version("echo", predict_s=2.5), logs_cap=4096),
    Predict(41, [{"text": "héllo", "n": 2}, {"nested": {"list": [1, 2.5, None]}}], live=True),
    Shutdown(),
    Ready(SIGNATURE, 0.25),
    SetupFailed("RuntimeError: no GPU", "Traceback ...\n"),
    Large(5 << 20),
    Chunk(41, 1, ("tok", "en"), OutputStream.TEXT, logs="step 1\n"),
    Done(
        41,
        [
            Outcome(output={"label": "positive"}, logs="hi\n", execution_time=0.01),
            Outcome(error="ValueError: bad", logs="about to fail\n"),
            Outcome(error="invalid input: text: empty", refused=[{"loc": ["text"]}]),
            Outcome(output=[1, 2], streamed=OutputStream.ITEMS),
        ],
    ),
]


def test_the_message_set_is_closed_each_way() -> None:
    assert set(typing.get_args(ToChild)) == {Setup, Predict, Shutdown}
    assert set(typing.get_args(ToParent)) == {Ready, SetupFailed, Chunk, Done, Large}
    sent = {type(m) for m in MESSAGES}
    assert sent == set(typing.get_args(ToChild)) | set(typing.get_args(ToParent))
    # Anything else the module defines is a part of a message, not a message of its own.
    defined = {
        value
        for value in vars(protocol).values()
        if dataclasses.is_dataclass(value) and value.__module__ == protocol.__name__
    }
    assert defined == sent | {Outcome}


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_each_message_crosses_a_socket_pair_unchanged(message: object) -> None:
    parent, child = multiprocessing.Pipe(duplex=True)
    with parent, child:
        parent.send(message)
        assert child.recv() == message
        child.send(message)
        assert parent.recv() == message


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_messages_are_frozen(message: object) -> None:
    fields = dataclasses.fields(message)  # type: ignore[arg-type]
    if not fields:
        return
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(message, fields[0].name, None)


def test_an_outcome_holds_only_data_a_failure_as_its_text() -> None:
    failed = Outcome(error="KeyError: 'x'")
    assert failed.output is None
    assert failed.refused is None
    assert (failed.logs, failed.execution_time) == ("", 0.0)
    assert {f.name: f.type for f in dataclasses.fields(Outcome)}["error"] == "str | None"


def test_an_outcome_unpickles_with_one_constructor_call() -> None:
    # Not field by field through dataclasses' state hooks: a batch's outcomes cross the process
    # boundary on every prediction, and that made them 2.5x slower each way.
    outcome = Outcome(output={"y": [1.5]}, error=None, refused=None, logs="x", execution_time=0.5)
    data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    assert "BUILD" not in {op.name for op, _, _ in pickletools.genops(data)}
    assert pickle.loads(data) == outcome
