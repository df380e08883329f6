"""Deployment lifecycle: building → deploying → ready, or failed / stopped."""

from enum import StrEnum


class DeploymentStatus(StrEnum):
    BUILDING = "building"
    DEPLOYING = "deploying"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def loading(self) -> bool:
        """Building its environment or starting its replicas: it will answer soon."""
        return self in (DeploymentStatus.BUILDING, DeploymentStatus.DEPLOYING)

    @property
    def not_ready(self) -> bool:
        """Loading or stopped: every dialect answers its "not ready" form (ModelNotReady)."""
        return self.loading or self is DeploymentStatus.STOPPED
