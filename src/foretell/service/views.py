"""What the catalog answers: frozen views of models, versions and their readiness.

A view is a snapshot, built once when its deployment or the model's environments change and
shared by every request until then; nothing in it reaches a running deployment. Its schemas
and options are the version's own objects: read them, never change them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from foretell.domain import DeploymentStatus, ModelRef
from foretell.errors import ModelLoadFailed
from foretell.manifest import Batching, Signature

Visibility = Literal["public", "private"]
_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class VersionView:
    """One version of a model and the deployment serving it, as they stand now."""

    owner: str
    name: str
    number: int
    deployment_id: str
    status: DeploymentStatus
    created_at: datetime  # when this server found it (at startup, on disk later, or pushed)
    updated_at: datetime  # when its status last changed
    visibility: Visibility = "private"
    description: str = ""
    error: str | None = None  # why it failed, when it has
    signature: Signature | None = None  # known once a replica has loaded
    runtime: str | None = None  # None: its folder could not be read
    replicas_min: int = 0  # its manifest's range (`replicas: N` is N and N)
    replicas_max: int = 0
    replicas_running: int = 0  # started and serving now
    isolation: str | None = None
    batching: Batching | None = None
    # Its runtime's own settings (e.g. a forecaster's lookback).
    options: Mapping[str, Any] = field(default_factory=lambda: _NO_OPTIONS)
    environments: tuple[str, ...] = ()  # those serving this version now
    logs: str = ""  # what went wrong setting up its replicas
    build_log: str = ""  # pip's output building its own environment (its requirements.txt)
    ready_at: datetime | None = None  # when it last became ready
    stopped_at: datetime | None = None  # when it was last stopped (unloaded)

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.owner, self.name, self.number)

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def public(self) -> bool:
        return self.visibility == "public"

    @property
    def ready(self) -> bool:
        return self.status is DeploymentStatus.READY

    @property
    def loading(self) -> bool:
        """Building its environment or starting its replicas: it will answer soon."""
        return self.status.loading

    @property
    def not_ready(self) -> bool:
        """Loading or stopped: every dialect answers its "not ready" form (ModelNotReady)."""
        return self.status.not_ready

    def load_error(self) -> ModelLoadFailed:
        """Why it cannot answer, once it has failed (or has not finished loading)."""
        return ModelLoadFailed(str(self.ref), self.error or "it has not finished loading")


@dataclass(frozen=True, slots=True)
class ModelView:
    """A model with the versions a viewer may see, oldest first (never none)."""

    owner: str
    name: str
    model_id: str  # DNS-safe, for host names such as model-{model_id}.example.com
    versions: tuple[VersionView, ...]

    @property
    def newest(self) -> VersionView:
        return self.versions[-1]

    @property
    def description(self) -> str:
        return self.newest.description

    @property
    def visibility(self) -> Visibility:
        return self.newest.visibility

    @property
    def latest_version(self) -> int | None:
        """The highest version that is ready, as a plain `owner/name` runs it."""
        ready = [v.number for v in self.versions if v.ready]
        return max(ready) if ready else None


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether a set of versions can answer: what every health route reads."""

    versions: tuple[VersionView, ...]
    # The versions found at startup have all settled. From then on a version loading (pushed,
    # added on disk, loaded again) is on its way, as a stopped one is off: neither takes the
    # server out of service (an orchestrator would pull it, and every model with it, for the
    # minutes a build can take), as Triton's explicit model control does not.
    started: bool = False

    @property
    def loading(self) -> bool:
        """Some version found at startup is still building or deploying."""
        return not self.started and any(v.loading for v in self.versions)

    @property
    def all_ready(self) -> bool:
        """Every version is ready, but those loading since startup or stopped."""
        return all(v.ready for v in self._serving)

    @property
    def answering(self) -> bool:
        """Every one of them can answer now, stopped or loading or not: the readiness of models
        named (GPUX's default models), where `all_ready` is a server's."""
        return all(v.ready for v in self.versions)

    @property
    def models_ready(self) -> bool:
        """Every model has a version ready, among those `all_ready` counts."""
        models: dict[tuple[str, str], bool] = {}
        for v in self._serving:
            models[v.owner, v.name] = models.get((v.owner, v.name), False) or v.ready
        return all(models.values())

    @property
    def _serving(self) -> list[VersionView]:
        """The versions that are meant to serve now (see `started`)."""
        return [
            v
            for v in self.versions
            if not (v.status is DeploymentStatus.STOPPED or (self.started and v.loading))
        ]

    def counts(self) -> dict[str, int]:
        """How many versions are in each status, every status named (zeros too)."""
        found = Counter(v.status for v in self.versions)
        return {status.value: found[status] for status in DeploymentStatus}

    def statuses(self) -> dict[str, str]:
        """Each version's status, by `owner/name:number`."""
        return {str(v.ref): v.status.value for v in self.versions}


@dataclass(frozen=True, slots=True)
class Tallied:
    """How many of something happened and their total time."""

    count: int
    ns: int


@dataclass(frozen=True, slots=True)
class StatisticsView:
    """A version's inference statistics as this process counted them, at one moment."""

    version: VersionView
    success: Tallied  # predictions that succeeded, creation to end
    fail: Tallied  # predictions that failed, creation to end
    queue: Tallied  # creation to start on a replica
    compute_infer: Tallied  # each prediction's batch on its replica
    executions: int  # batches run on a replica
    last_inference_ms: int  # when the last prediction ended, ms since the epoch; 0: none yet
