"""Deployment lifecycle: building → deploying → ready, or failed / stopped."""

from enum import StrEnum


class DeploymentStatus(StrEnum):
    BUILDING = "building"
    DEPLOYING = "deploying"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"
