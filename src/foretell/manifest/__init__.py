"""A model is a folder: manifests, the repository scan, and input/output schemas."""

from foretell.manifest.manifest import (
    REQUIREMENTS_FILE,
    Batching,
    Manifest,
    Placement,
    RayOptions,
    ReplicaRange,
    Timeouts,
    load_manifest,
)
from foretell.manifest.repository import ModelVersion, Repository, scan_repository
from foretell.manifest.schema import Signature

__all__ = [
    "REQUIREMENTS_FILE",
    "Batching",
    "Manifest",
    "ModelVersion",
    "Placement",
    "RayOptions",
    "ReplicaRange",
    "Repository",
    "Signature",
    "Timeouts",
    "load_manifest",
    "scan_repository",
]
