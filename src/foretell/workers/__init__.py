"""The replica boundary: a closed set of typed messages, the child loop, thread, process and Ray
actor replicas behind one handle, and the pool that restarts them. (The Ray ones live in
ray_replica.py, imported only where a model is placed on Ray.)"""

from foretell.workers.handle import ReplicaHandle
from foretell.workers.inprocess import ThreadReplica
from foretell.workers.placement import LOCAL, ServerPlacement
from foretell.workers.pool import Pool, isolated, new_replica
from foretell.workers.protocol import Chunk, Outcome
from foretell.workers.replica import ProcessReplica

__all__ = [
    "LOCAL",
    "Chunk",
    "Outcome",
    "Pool",
    "ProcessReplica",
    "ReplicaHandle",
    "ServerPlacement",
    "ThreadReplica",
    "isolated",
    "new_replica",
]
