"""Which versions the synchronous dialects (SlashML, Spice, GPUX, Baseten, OIP) let predict: a
ready one; one building, deploying or stopped is "not ready" (ModelNotReady: 503 + Retry-After,
SlashML's seed 400), even when its signature is known from an earlier load; a failed one says
why it failed. What readiness counts as still loading follows the same statuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from foretell.api.dialects.gpux.defaults import choose
from foretell.api.dialects.sync import answering
from foretell.domain import DeploymentStatus
from foretell.errors import ModelLoadFailed, ModelNotReady
from foretell.manifest import Signature
from foretell.service import Readiness, VersionView

SIGNATURE = Signature({"type": "object", "properties": {"x": {}}, "required": ["x"]}, {})


def version(status: DeploymentStatus, signature: Signature | None) -> VersionView:
    now = datetime.now(UTC)
    return VersionView("acme", "echo", 1, "d", status, now, now, signature=signature)


@pytest.mark.parametrize(
    "status", [DeploymentStatus.BUILDING, DeploymentStatus.DEPLOYING, DeploymentStatus.STOPPED]
)
@pytest.mark.parametrize("signature", [None, SIGNATURE], ids=["never-loaded", "loaded-before"])
def test_a_version_building_deploying_or_stopped_is_not_ready(
    status: DeploymentStatus, signature: Signature | None
) -> None:
    unready = version(status, signature)

    with pytest.raises(ModelNotReady) as refused:
        answering(unready)

    assert refused.value.message == f"model 'acme/echo:1' is not ready: deployment is {status}"
    assert unready.not_ready


def test_a_ready_version_answers_and_a_failed_one_says_why() -> None:
    assert answering(version(DeploymentStatus.READY, SIGNATURE)) is SIGNATURE
    with pytest.raises(ModelLoadFailed):
        answering(version(DeploymentStatus.FAILED, None))


def test_a_default_model_building_may_be_the_one_meant() -> None:
    building = version(DeploymentStatus.BUILDING, None)
    other = VersionView(
        "acme", "other", 1, "e", DeploymentStatus.READY, building.created_at, building.created_at
    )
    with pytest.raises(ModelNotReady, match="deployment is building"):
        choose([other, building], {"x": 1})


def test_readiness_counts_a_building_version_as_loading_and_a_stopped_one_not() -> None:
    assert Readiness((version(DeploymentStatus.BUILDING, None),)).loading
    assert not Readiness((version(DeploymentStatus.STOPPED, SIGNATURE),)).loading


def test_a_stopped_version_keeps_no_server_or_model_from_ready() -> None:
    ready = version(DeploymentStatus.READY, SIGNATURE)
    stopped = VersionView(
        "acme", "other", 1, "e", DeploymentStatus.STOPPED, ready.created_at, ready.created_at
    )
    both = Readiness((ready, stopped))
    assert both.all_ready, "an unloaded model is not meant to serve"
    assert both.models_ready
    assert not both.answering, "named (GPUX's default models), the stopped one cannot answer"
    failed = version(DeploymentStatus.FAILED, None)
    assert not Readiness((ready, failed)).all_ready


def test_once_started_a_version_loading_again_or_anew_keeps_the_server_ready() -> None:
    ready = version(DeploymentStatus.READY, SIGNATURE)
    building = VersionView(
        "acme", "pushed", 1, "e", DeploymentStatus.BUILDING, ready.created_at, ready.created_at
    )
    at_startup = Readiness((ready, building))
    assert at_startup.loading
    assert not at_startup.all_ready
    assert not at_startup.models_ready
    since = Readiness((ready, building), started=True)  # pushed minutes after the start
    assert not since.loading
    assert since.all_ready
    assert since.models_ready
