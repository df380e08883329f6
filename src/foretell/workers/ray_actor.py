"""The Ray actor that is one replica: a thin shell over child.py's setup and batch loop.

It answers the same messages as a worker process (Setup → Ready | SetupFailed, Predict → Done),
built by the same functions, so a model behaves alike wherever it runs; only the transport is
Ray's. Setup runs in the constructor: when Ray restarts the actor (its `max_restarts`, after
its process or node died) the model loads again with no call from the server, and `ready()`
answers once it has.

Interrupting a batch: Ray cannot stop a running task of a threaded actor (`ray.cancel` only
sets a flag), and a signal reaches only the main thread, where Ray does not run tasks of an
actor with concurrency groups. So `interrupt` raises `Interrupted` in the batch's thread
(PyThreadState_SetAsyncExc): Python code of the model stops at its next bytecode; a model blocked
in one long C call finishes it first, and the server kills the actor after the cancel grace.

Imported only where a model is placed on Ray (and in the actor's own process), never by the
embedded default.
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass

import ray

from foretell.runtimes.base import LoadedModel
from foretell.workers.child import Interrupted, canceled, load_model, run_batch, setup
from foretell.workers.protocol import Done, Outcome, Predict, Ready, Setup, SetupFailed


@dataclass(frozen=True, slots=True)
class Node:
    """Where an actor runs, for the messages that say which node failed."""

    id: str
    ip: str
    pid: int

    def __str__(self) -> str:
        return f"Ray node {self.ip} (node id {self.id[:12]}, pid {self.pid})"


# Two threads beside the batches' own: `watch` blocks for the actor's whole life (its failing is
# how the server notices an idle actor die), `control` answers interrupts while a batch runs.
@ray.remote(concurrency_groups={"watch": 1, "control": 1})  # type: ignore[call-overload]
class ReplicaActor:
    """One replica of one model version on a Ray node."""

    def __init__(self, message: Setup) -> None:
        self._model: LoadedModel | None
        self._model, self._reply = setup(message, load_model)
        self._logs_cap = message.logs_cap
        context = ray.get_runtime_context()
        ip = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
        self._node = Node(context.get_node_id(), ip, os.getpid())
        self._lock = threading.Lock()
        self._running: int | None = None  # the batch id running, and in which thread
        self._thread = 0
        self._interrupted = False
        self._gone = threading.Event()

    def ready(self) -> tuple[Ready | SetupFailed, Node]:
        return self._reply, self._node

    def predict(self, message: Predict) -> Done:
        model = self._model
        assert model is not None, "predict before a successful setup"
        outcomes: list[Outcome] | None = None
        # An interrupt is delivered at most once per batch, wherever the thread then is; every
        # place it can land is inside this try, and _settle() withdraws one not yet delivered.
        while True:
            try:
                if outcomes is None:
                    outcomes = self._run(model, message)
                self._settle()
                return Done(message.batch_id, outcomes)
            except Interrupted:
                outcomes = outcomes if outcomes is not None else canceled(message.inputs)

    def _run(self, model: LoadedModel, message: Predict) -> list[Outcome]:
        with self._lock:
            self._running, self._thread = message.batch_id, threading.get_ident()
            self._interrupted = False
        try:
            return run_batch(model, message.inputs, logs_cap=self._logs_cap)
        except Interrupted:
            return canceled(message.inputs)

    def _settle(self) -> None:
        with self._lock:
            if self._interrupted:
                _async_raise(self._thread, None)
            self._running, self._interrupted = None, False

    @ray.method(concurrency_group="control")
    def interrupt(self, batch_id: int) -> bool:
        """Stop batch `batch_id` if it is still running; False if it is not."""
        with self._lock:
            if self._running != batch_id or self._interrupted:
                return False
            self._interrupted = True
            _async_raise(self._thread, Interrupted)
            return True

    @ray.method(concurrency_group="watch")
    def watch(self) -> None:
        """Never answers: the call fails when the actor dies, which is how the server learns."""
        self._gone.wait()


def _async_raise(thread: int, exc: type[BaseException] | None) -> None:
    """Raise `exc` in `thread` at its next bytecode; None withdraws one not yet raised."""
    set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    set_async_exc(ctypes.c_ulong(thread), ctypes.py_object(exc) if exc is not None else None)
