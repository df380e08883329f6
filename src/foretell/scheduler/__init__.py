"""Per-deployment queues, batching and dispatch of predictions to replicas."""

from foretell.scheduler.admission import Admission
from foretell.scheduler.dispatcher import Scheduler
from foretell.scheduler.job import Job

__all__ = ["Admission", "Job", "Scheduler"]
