"""Where a version's replicas run: its manifest's `placement`, else the server's default."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from foretell.config import Settings
from foretell.errors import ModelLoadFailed, WorkerCrashed
from foretell.manifest import ModelVersion, RayOptions, Signature
from foretell.workers.logs import LOGS_CAP
from foretell.workers.protocol import Chunk, Outcome


@dataclass(frozen=True, slots=True)
class ServerPlacement:
    """The server's side: the Ray cluster it joins, if any, where models go that say nothing
    about it, and the characters of one input's prints its replicas keep (logs_cap)."""

    ray_address: str | None = None
    default: Literal["local", "ray"] = "local"
    logs_cap: int = LOGS_CAP

    @classmethod
    def of(cls, settings: Settings) -> ServerPlacement:
        return cls(settings.ray_address, settings.placement, settings.max_prediction_logs_chars)


LOCAL = ServerPlacement()


def ray_options(version: ModelVersion, server: ServerPlacement) -> RayOptions | None:
    """What each replica of `version` reserves on Ray; None when they run on this machine."""
    placement = version.manifest.placement
    if placement is not None:
        return placement.ray
    return RayOptions() if server.default == "ray" else None


class Unplaced:
    """A replica that cannot run where its manifest puts it: its start fails with the reason,
    so the deployment is `failed` saying what to change, and the other models serve."""

    def __init__(self, version: ModelVersion, reason: str) -> None:
        self.version = version
        self.reason = reason
        self.setup_time = 0.0
        self.on_exit: Callable[[], None] = lambda: None

    @property
    def alive(self) -> bool:
        return False

    async def start(self) -> Signature:
        raise ModelLoadFailed(str(self.version.ref), self.reason)

    async def predict(
        self, inputs: Sequence[dict[str, Any]], on_chunk: Callable[[Chunk], None] | None = None
    ) -> list[Outcome]:
        raise WorkerCrashed(str(self.version.ref), None, self.reason)

    def interrupt(self) -> bool:
        return False

    async def stop(self) -> None:
        return None
