"""The process boundary: a closed set of typed messages, the child loop, the parent-side replica."""

from foretell.workers.protocol import Outcome
from foretell.workers.replica import Replica

__all__ = ["Outcome", "Replica"]
