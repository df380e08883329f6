"""Ray's account of a lost actor, as a WorkerCrashed message carries it: one line, the node and
the cause kept, ids and boilerplate dropped, never unbounded."""

from __future__ import annotations

from ray.core.generated.common_pb2 import ActorDiedErrorContext
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError

from foretell.workers.ray_replica import _cause


def test_a_dead_actor_keeps_its_node_and_cause_without_ids() -> None:
    context = ActorDiedErrorContext(
        error_message="The actor died because its node has died.",
        class_name="ReplicaActor",
        actor_id=bytes(16),
        pid=4242,
        node_ip_address="127.0.0.3",
    )

    cause = _cause(ActorDiedError(context))

    assert cause == "ip: 127.0.0.3 The actor died because its node has died."


def test_an_unavailable_actor_says_what_ray_saw() -> None:
    cause = _cause(ActorUnavailableError("RpcError: RPC error: Socket closed", None))

    assert "is unavailable: RpcError: RPC error: Socket closed" in cause
    assert "\n" not in cause


def test_no_cause_at_all_still_says_what_happened() -> None:
    assert _cause(ActorDiedError(None)) == "ActorDiedError: the actor died (Ray gave no cause)"
    assert _cause(GetTimeoutError("x")) == "Ray did not answer in time"


def test_a_long_cause_is_cut() -> None:
    cause = _cause(ActorUnavailableError("x" * 5000, None))

    assert len(cause) == 601
    assert cause.endswith("…")
