"""Environments: the named versions a model serves (production, development, staging, …).

Unassigned, `production` is the version a plain `owner/name` runs (the latest ready one) and
`development` the newest version; any environment can be pointed at a version by an admin, and
the assignment is stored, so it survives a restart."""

from __future__ import annotations

import re
from collections.abc import Callable

from foretell.domain import ModelRef
from foretell.domain.access import Principal
from foretell.errors import EnvironmentNotFound, InvalidRequest, ModelNotFound
from foretell.service.deployment import Deployment
from foretell.service.deployments import Deployments
from foretell.store.environments import Assignments, EnvironmentStore

DEFAULTS = ("production", "development")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class Environments:
    def __init__(self, deployments: Deployments, store: EnvironmentStore) -> None:
        self._deployments = deployments
        self._store = store
        self._assigned: Assignments = {}
        self._on_change: Callable[[], None] = lambda: None

    def watch(self, on_change: Callable[[], None]) -> None:
        """Call `on_change` whenever an environment is pointed at another version."""
        self._on_change = on_change

    async def load(self) -> None:
        self._assigned = await self._store.all()
        self._on_change()

    def resolve(
        self, owner: str, name: str, environment: str, viewer: Principal | None = None
    ) -> Deployment:
        """The deployment `environment` of `owner/name` serves, if `viewer` may see it."""
        versions = self._deployments.versions(owner, name, viewer)
        number = self._assigned.get((owner, name, environment))
        if number is not None:
            if number in versions:
                return versions[number]
            if number in self._deployments.versions(owner, name):
                raise ModelNotFound(f"{owner}/{name}")  # a version this caller may not see
            raise EnvironmentNotFound(
                f"{owner}/{name}",
                environment,
                self.names(owner, name, viewer),
                f"it serves version {number}, which is no longer in the repository; assign it "
                "another version",
            )
        if environment == "production":
            return self._deployments.resolve(ModelRef(owner, name), viewer)
        if environment == "development":
            return versions[max(versions)]
        raise EnvironmentNotFound(f"{owner}/{name}", environment, self.names(owner, name, viewer))

    def names(self, owner: str, name: str, viewer: Principal | None = None) -> list[str]:
        """The environments of `owner/name` (that `viewer` may see): the two defaults, then
        those assigned."""
        visible = self._deployments.versions(owner, name, viewer)
        everything = self._deployments.versions(owner, name)
        assigned = sorted(
            e
            for (o, n, e), number in self._assigned.items()
            if (o, n) == (owner, name) and (number in visible or number not in everything)
        )
        return [*DEFAULTS, *(e for e in assigned if e not in DEFAULTS)]

    def of(self, deployment: Deployment) -> list[str]:
        """The environments serving `deployment` now."""
        owner, name = deployment.owner, deployment.name
        return [
            env for env in self.names(owner, name) if self._serves(owner, name, env) is deployment
        ]

    async def assign(
        self, owner: str, name: str, environment: str, version: int, viewer: Principal
    ) -> Deployment:
        """Point `environment` of `owner/name` at `version` (made if it is new)."""
        if not _NAME.match(environment):
            raise InvalidRequest(
                f"environment: '{environment}' is not an environment name; use 1-32 lowercase "
                "letters, digits or '-', starting with a letter or digit"
            )
        deployment = self._deployments.resolve(ModelRef(owner, name, version), viewer)
        key = (owner, name, environment)
        previous = self._assigned.get(key)
        # Taken before the write: a second assignment meanwhile updates the row this inserts.
        self._assigned[key] = version
        self._on_change()
        try:
            await self._store.assign(owner, name, environment, version, new=previous is None)
        except BaseException:
            if previous is None:
                self._assigned.pop(key, None)
            else:
                self._assigned[key] = previous
            self._on_change()
            raise
        return deployment

    def _serves(self, owner: str, name: str, environment: str) -> Deployment | None:
        try:
            return self.resolve(owner, name, environment)
        except (EnvironmentNotFound, ModelNotFound):
            return None
