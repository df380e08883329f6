"""Which deployment a model reference runs on: the named version, else the latest ready one."""

from pathlib import Path

import pytest

from foretell.domain import DeploymentStatus, ModelRef
from foretell.errors import ModelNotFound, VersionNotFound
from foretell.manifest import Repository
from foretell.service.deployment import Deployment
from foretell.service.deployments import Deployments


def deployments(*statuses: DeploymentStatus) -> Deployments:
    registry = Deployments(Repository(root=Path(".")))
    for number, status in enumerate(statuses, start=1):
        registry._add(Deployment("acme", "churn", number, None, status=status))
    return registry


def test_latest_ready_version_wins_over_a_newer_one_still_deploying() -> None:
    registry = deployments(
        DeploymentStatus.READY, DeploymentStatus.READY, DeploymentStatus.DEPLOYING
    )
    assert registry.resolve(ModelRef("acme", "churn")).number == 2


def test_latest_deploying_version_when_none_is_ready() -> None:
    registry = deployments(DeploymentStatus.FAILED, DeploymentStatus.DEPLOYING)
    assert registry.resolve(ModelRef("acme", "churn")).number == 2


def test_a_failed_newest_version_does_not_hide_a_ready_older_one() -> None:
    registry = deployments(DeploymentStatus.READY, DeploymentStatus.FAILED)
    assert registry.resolve(ModelRef("acme", "churn")).number == 1


def test_all_failed_resolves_to_the_newest_so_its_error_is_reported() -> None:
    registry = deployments(DeploymentStatus.FAILED, DeploymentStatus.FAILED)
    assert registry.resolve(ModelRef("acme", "churn")).number == 2


def test_an_explicit_version_is_used_even_if_not_ready() -> None:
    registry = deployments(DeploymentStatus.READY, DeploymentStatus.DEPLOYING)
    assert registry.resolve(ModelRef("acme", "churn", 2)).status is DeploymentStatus.DEPLOYING


def test_unknown_version_lists_the_versions_that_exist() -> None:
    registry = deployments(DeploymentStatus.READY, DeploymentStatus.READY)
    with pytest.raises(VersionNotFound, match=r"has no version 7; versions that exist: 1, 2"):
        registry.resolve(ModelRef("acme", "churn", 7))


def test_unknown_model_is_named() -> None:
    with pytest.raises(ModelNotFound, match=r"^model 'nobody/nothing' not found$"):
        deployments().resolve(ModelRef("nobody", "nothing"))
