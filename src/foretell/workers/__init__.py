"""The replica boundary: a closed set of typed messages, the child loop, process and thread
replicas behind one handle, and the pool that restarts them."""

from foretell.workers.handle import ReplicaHandle
from foretell.workers.inprocess import ThreadReplica
from foretell.workers.pool import Pool, isolated, new_replica
from foretell.workers.protocol import Outcome
from foretell.workers.replica import ProcessReplica

__all__ = [
    "Outcome",
    "Pool",
    "ProcessReplica",
    "ReplicaHandle",
    "ThreadReplica",
    "isolated",
    "new_replica",
]
