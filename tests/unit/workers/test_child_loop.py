"""The replica's loop (child.serve) over an in-memory socket pair, with doubles of a model: what
the parent is told for each message, and that a model's failure always arrives as data."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import socket
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from worker_doubles import SIGNATURE, Echo, load, version

from foretell.domain import OutputStream
from foretell.errors import ModelLoadFailed
from foretell.workers import child
from foretell.workers.protocol import (
    Chunk,
    Done,
    Outcome,
    Predict,
    Ready,
    Setup,
    SetupFailed,
    Shutdown,
    ToChild,
    ToParent,
)


def converse(model: str, *messages: ToChild) -> list[ToParent]:
    """Send Setup for `model` and `messages` to a child loop, then end the conversation with EOF;
    everything it answered, in order. The loop runs in this thread: the socket buffers hold the
    small messages both ways."""
    parent, end = multiprocessing.Pipe(duplex=True)
    with parent, end:
        for message in (Setup(version(model)), *messages):
            parent.send(message)
        # Half-close: the loop reads EOF after the messages, and can still answer.
        with socket.socket(fileno=os.dup(parent.fileno())) as same:
            same.shutdown(socket.SHUT_WR)
        child.serve(end, load)
        answers = []
        while parent.poll(0):
            answers.append(parent.recv())
        return answers


def outcomes(model: str, *inputs: dict[str, Any]) -> list[Outcome]:
    ready, done = converse(model, Predict(7, list(inputs)))
    assert isinstance(ready, Ready)
    assert isinstance(done, Done)
    assert done.batch_id == 7
    return done.outcomes


def test_setup_answers_ready_with_the_signature_and_the_time_it_took() -> None:
    (ready,) = converse("echo")
    assert isinstance(ready, Ready)
    assert ready.signature == SIGNATURE
    assert 0 <= ready.setup_time < 5


def test_each_batch_is_answered_under_its_id_one_outcome_per_input_in_order() -> None:
    answers = converse("echo", Predict(1, [{"n": 1}, {"n": 2}]), Predict(2, [{"n": 3}]))
    assert [type(a) for a in answers] == [Ready, Done, Done]
    first, second = answers[1:]
    assert isinstance(first, Done)
    assert isinstance(second, Done)
    assert first.batch_id == 1
    assert [o.output for o in first.outcomes] == [{"n": 1}, {"n": 2}]
    assert second.batch_id == 2
    assert [o.output for o in second.outcomes] == [{"n": 3}]
    assert all(o.error is None and o.execution_time >= 0 for o in first.outcomes)


def test_a_models_exception_arrives_as_its_text_never_as_the_exception() -> None:
    (failed,) = outcomes("raises-on-bad", {"bad": True})
    # Its class is local to the model: sent as an object, it could not be unpickled here.
    assert failed.error == "Unpicklable: boom"
    assert failed.output is None
    assert failed.logs == "about to fail\n"


def test_a_batch_that_raises_runs_again_input_by_input_so_only_the_bad_one_fails() -> None:
    good, bad, other = outcomes("raises-on-bad", {"n": 1}, {"bad": True}, {"n": 3})
    assert (good.output, good.error) == ({"n": 1}, None)
    assert (bad.output, bad.error) == (None, "Unpicklable: boom")
    assert (other.output, other.error) == ({"n": 3}, None)


def test_a_model_that_miscounts_its_outputs_runs_input_by_input() -> None:
    answers = outcomes("miscounts", {"n": 1}, {"n": 2}, {"n": 3})
    assert [o.output for o in answers] == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_a_refused_input_fails_alone_as_the_callers_error_in_json() -> None:
    kept, refused = outcomes("refuses", {"n": 1}, {"refuse": True})
    assert kept.output == {"n": 1}
    assert kept.refused is None
    assert refused.output is None
    assert refused.error == "invalid input: text: no mask left"
    # The exception in ctx became its message: the record stores JSON.
    assert refused.refused == [{"loc": ["text"], "msg": "no mask left", "ctx": {"error": "cut"}}]


def test_what_one_prediction_prints_is_its_logs_but_a_batchs_prints_are_nobodys() -> None:
    (alone,) = outcomes("echo", {"n": 1})
    assert alone.logs == "predicting 1\n"
    # A batch mixes callers: one's data must not reach another's record.
    assert [o.logs for o in outcomes("echo", {"n": 1}, {"n": 2})] == ["", ""]


def test_a_setup_that_fails_is_reported_with_its_traceback_and_ends_the_loop() -> None:
    answers = converse("raises-in-setup", Predict(1, [{"n": 1}]))
    assert answers == [SetupFailed("RuntimeError: no GPU", "Traceback (fake)\n")]


def test_shutdown_ends_the_loop_and_what_follows_is_not_run() -> None:
    answers = converse("echo", Predict(1, [{"n": 1}]), Shutdown(), Predict(2, [{"n": 2}]))
    assert [type(a) for a in answers] == [Ready, Done]


def test_eof_before_setup_ends_the_loop_quietly() -> None:
    parent, end = multiprocessing.Pipe(duplex=True)
    parent.close()
    with end:
        child.serve(end, load)  # returns: nothing to answer, nobody to answer to


def test_load_model_reports_any_failure_as_model_load_failed_with_reason_and_traceback() -> None:
    unknown = version("echo").manifest.model_copy(update={"runtime": "abacus"})
    target = version("echo")
    broken = type(target)(target.owner, target.name, target.number, target.path, unknown)
    with pytest.raises(ModelLoadFailed) as caught:
        child.load_model(broken)
    assert caught.value.model == "acme/echo:1"
    assert caught.value.reason.startswith("ValueError: unknown runtime 'abacus'")
    assert "Traceback (most recent call last)" in caught.value.traceback


class InterruptsItself(Echo):
    """Is sent the parent's interrupt mid-batch, as a canceled batch's replica is."""

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        os.kill(os.getpid(), child.INTERRUPT)  # its handler raises on return from this call
        raise AssertionError("the interrupt did not stop the batch")


@pytest.fixture
def interrupt_handler() -> Iterator[None]:
    """child.main's handler of the parent's interrupt, in this process for the test's length."""
    previous = signal.signal(child.INTERRUPT, child._interrupt)
    try:
        yield
    finally:
        signal.signal(child.INTERRUPT, previous)


@pytest.mark.usefixtures("interrupt_handler")
def test_an_interrupted_batch_answers_each_input_as_interrupted() -> None:
    answers = child._interruptible(InterruptsItself(), [{"n": 1}, {"n": 2}])
    assert [o.error for o in answers] == ["Interrupted: the prediction was canceled"] * 2
    # Outside a batch the interrupt is ignored: a late one must not kill the idle loop.
    os.kill(os.getpid(), child.INTERRUPT)


class InterruptedWhileSending:
    """A connection whose send is where the parent's interrupt lands, as it may while a
    streaming batch sends a chunk."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_bytes(self, data: bytes) -> None:
        os.kill(os.getpid(), child.INTERRUPT)  # its handler runs on return from this call
        half = len(data) // 2
        self.sent.append(bytes(data[:half]))
        self.sent.append(bytes(data[half:]))


class SendsAChunk(Echo):
    """Sends a chunk of its stream on `conn`, as the loop does for a streaming model."""

    def __init__(self, conn: InterruptedWhileSending, chunk: Chunk) -> None:
        self.conn, self.chunk = conn, chunk

    def predict(self, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        child.send_chunk(self.conn, self.chunk)  # type: ignore[arg-type]
        raise AssertionError("the interrupt did not stop the batch")


@pytest.mark.usefixtures("interrupt_handler")
def test_an_interrupt_during_a_chunks_send_waits_until_it_is_whole() -> None:
    conn = InterruptedWhileSending()
    chunk = Chunk(3, 0, ("token",), OutputStream.TEXT)
    answers = child._interruptible(SendsAChunk(conn, chunk), [{"n": 1}])
    assert answers == child.canceled([{"n": 1}])
    # The whole message went out before the interrupt was raised.
    assert pickle.loads(b"".join(conn.sent)) == chunk
