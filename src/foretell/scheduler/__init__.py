"""Per-deployment queues, batching and dispatch of predictions to replicas."""

from foretell.scheduler.admission import Admission
from foretell.scheduler.batcher import Batcher
from foretell.scheduler.dispatcher import QueuePlace, Scaling, Scheduler
from foretell.scheduler.job import Job

__all__ = ["Admission", "Batcher", "Job", "QueuePlace", "Scaling", "Scheduler"]
