"""The catalog: what the API may know of the models served — frozen views, never a deployment.

Every lookup takes the viewer and sees only what it may (its owner's models, public ones, or
all for an admin); anything else is not found, as if it did not exist. Views are built when
first asked for after a change (a deployment settling, failing or stopping, its replicas' logs,
an environment assigned) and shared until the next one, so a request pays a dict lookup."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from types import MappingProxyType

from foretell.domain import ModelRef
from foretell.domain.access import Principal
from foretell.metrics import Tally
from foretell.service.deployment import Deployment
from foretell.service.deployments import Deployments, model_id_of
from foretell.service.environments import Environments
from foretell.service.views import (
    ModelView,
    Readiness,
    StatisticsView,
    Tallied,
    VersionView,
)

# A regex per model per request otherwise (GPUX's /predict lists the models on each one).
_model_id = cache(model_id_of)


class Catalog:
    """Models, versions, schemas, environments and readiness, as views."""

    def __init__(self, deployments: Deployments, environments: Environments) -> None:
        self._deployments = deployments
        self._environments = environments
        self._views: dict[str, VersionView] = {}  # by deployment id
        # One change may move what another version shows (production is the latest ready
        # version), and changes are rare: each forgets every view.
        deployments.watch(self._views.clear)
        environments.watch(self._views.clear)

    def models(self, viewer: Principal) -> list[ModelView]:
        """Every model `viewer` may see, by owner and name, with the versions it may see."""
        return [
            self._model(owner, name, versions.values())
            for (owner, name), versions in self._deployments.models(viewer).items()
        ]

    def model(self, owner: str, name: str, viewer: Principal) -> ModelView:
        """ModelNotFound unless `viewer` may see a version of it."""
        return self._model(owner, name, self._deployments.versions(owner, name, viewer).values())

    def version(self, ref: ModelRef, viewer: Principal) -> VersionView:
        """The version `ref` names, or without a number the one that answers it: the latest
        ready (else the latest still deploying, else the newest). ModelNotFound,
        VersionNotFound."""
        return self._view(self._deployments.resolve(ref, viewer))

    def lookup(self, name: str, viewer: Principal) -> VersionView:
        """The version a caller names whole as `owner/name[:version]`; a name no model could
        have is ModelNotFound, as an unknown one is."""
        return self._view(self._deployments.lookup(name, viewer))

    def by_id(self, deployment_id: str, viewer: Principal) -> VersionView:
        """The version of this deployment id; DeploymentNotFound."""
        return self._view(self._deployments.by_id(deployment_id, viewer))

    def by_model_id(self, model_id: str, viewer: Principal) -> ModelView:
        """The model with this DNS-safe id (`owner-name`); ModelNotFound, or InvalidRequest
        when two models share it."""
        return self.model(*self._deployments.by_model_id(model_id, viewer), viewer)

    def environment(
        self, owner: str, name: str, environment: str, viewer: Principal
    ) -> VersionView:
        """The version `environment` of the model serves; EnvironmentNotFound, ModelNotFound."""
        return self._view(self._environments.resolve(owner, name, environment, viewer))

    def environments(self, owner: str, name: str, viewer: Principal) -> list[str]:
        """The model's environments: production and development, then those assigned."""
        return self._environments.names(owner, name, viewer)

    async def assign(
        self, owner: str, name: str, environment: str, version: int, viewer: Principal
    ) -> VersionView:
        """Point `environment` (made if new) at `version`, durably; the version it serves."""
        deployment = await self._environments.assign(owner, name, environment, version, viewer)
        return self._view(deployment)

    def readiness(
        self, viewer: Principal | None = None, refs: Sequence[ModelRef] | None = None
    ) -> Readiness:
        """The versions `refs` resolve to, else every version; those `viewer` may see, or
        without one all of them (their statuses counted are anyone's to know)."""
        if refs is not None:
            found = [self._deployments.resolve(ref, viewer) for ref in refs]
        else:
            found = [d for d in self._deployments.all() if viewer is None or d.visible_to(viewer)]
        started = self._deployments.first_load_settled
        return Readiness(tuple(self._view(d) for d in found), started=started)

    def statistics(
        self, viewer: Principal, refs: Sequence[ModelRef] | None = None
    ) -> list[StatisticsView]:
        """The inference statistics of the versions `refs` resolve to, else of every version
        `viewer` may see, as this process counted them since it began serving each."""
        if refs is not None:
            found = [self._deployments.resolve(ref, viewer) for ref in refs]
        else:
            found = [d for d in self._deployments.all() if d.visible_to(viewer)]
        return [self._statistics(d) for d in found]

    def _statistics(self, deployment: Deployment) -> StatisticsView:
        counted = deployment.metrics.statistics
        return StatisticsView(
            version=self._view(deployment),
            success=_tallied(counted.success),
            fail=_tallied(counted.fail),
            queue=_tallied(counted.queue),
            compute_infer=_tallied(counted.compute_infer),
            executions=counted.executions,
            last_inference_ms=counted.last_inference_ms,
        )

    def _model(self, owner: str, name: str, versions: Iterable[Deployment]) -> ModelView:
        shown = tuple(self._view(d) for d in versions)
        return ModelView(owner, name, _model_id(owner, name), shown)

    def _view(self, deployment: Deployment) -> VersionView:
        view = self._views.get(deployment.id)
        if view is None:
            view = self._views[deployment.id] = _view_of(
                deployment, tuple(self._environments.of(deployment))
            )
        return view


def _tallied(tally: Tally) -> Tallied:
    return Tallied(tally.count, tally.ns)


def _view_of(d: Deployment, environments: tuple[str, ...]) -> VersionView:
    manifest = d.version.manifest if d.version else None  # None: its folder was unreadable
    return VersionView(
        owner=d.owner,
        name=d.name,
        number=d.number,
        deployment_id=d.id,
        status=d.status,
        created_at=d.created_at,
        updated_at=d.updated_at,
        visibility=manifest.visibility if manifest else "private",
        description=manifest.description if manifest else "",
        error=d.error,
        signature=d.signature,
        runtime=manifest.runtime if manifest else None,
        replicas_min=d.replicas.min if manifest else 0,
        replicas_max=d.replicas.max if manifest else 0,
        replicas_running=d.running,
        isolation=manifest.isolation if manifest else None,
        batching=manifest.batching if manifest else None,
        options=MappingProxyType(manifest.options if manifest else {}),
        environments=environments,
        logs=d.logs,
        build_log=d.build_log,
        ready_at=d.ready_at,
        stopped_at=d.stopped_at,
    )
