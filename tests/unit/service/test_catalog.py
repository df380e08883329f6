"""The catalog: frozen views of models and versions, only what the viewer may see, readiness
counted in one place, and views built again only when something they show changed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from foretell.domain import DeploymentStatus, ModelRef
from foretell.domain.access import ANONYMOUS, Principal, Scope
from foretell.errors import DeploymentNotFound, ModelLoadFailed, ModelNotFound, VersionNotFound
from foretell.manifest import Manifest, ModelVersion, Repository, Signature
from foretell.service.catalog import Catalog
from foretell.service.deployment import Deployment, deployment_id
from foretell.service.deployments import Deployments
from foretell.service.environments import Environments
from foretell.store.environments import Assignments

pytestmark = pytest.mark.anyio

READY, DEPLOYING, FAILED = (
    DeploymentStatus.READY,
    DeploymentStatus.DEPLOYING,
    DeploymentStatus.FAILED,
)
ACME = Principal(owner="acme", scope=Scope.READ)
GLOBEX = Principal(owner="globex", scope=Scope.READ)
ADMIN = Principal(owner="ops", scope=Scope.ADMIN)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeEnvironmentStore:
    """Assignments in a dict, as EnvironmentStore keeps them in its table."""

    def __init__(self, assigned: Assignments | None = None) -> None:
        self.assigned: Assignments = dict(assigned or {})

    async def all(self) -> Assignments:
        return dict(self.assigned)

    async def assign(
        self, owner: str, name: str, environment: str, version: int, *, new: bool
    ) -> None:
        self.assigned[owner, name, environment] = version


def deployment(
    ref: str, status: DeploymentStatus, visibility: str = "private", **options: object
) -> Deployment:
    """A deployment of a version on no disk: nothing starts; its status is as given."""
    path, _, number = ref.partition(":")
    owner, name = path.split("/")
    manifest = Manifest.model_construct(
        runtime="python", description=f"{name} v{number}", visibility=visibility, options=options
    )
    version = ModelVersion(owner, name, int(number), Path(name), manifest)
    return Deployment(owner, name, int(number), version, status=status)


def catalog_of(*found: Deployment) -> tuple[Catalog, Deployments, Environments]:
    deployments = Deployments(Repository(root=Path(".")))
    for d in found:
        deployments._add(d)
    environments = Environments(deployments, FakeEnvironmentStore())  # type: ignore[arg-type]
    return Catalog(deployments, environments), deployments, environments


@pytest.fixture
def catalog() -> Catalog:
    """acme's private churn (v1 ready, v2 deploying, v3 failed), globex's public iris (v1
    ready) and globex's private secret (v1 ready)."""
    found, _, _ = catalog_of(
        deployment("acme/churn:1", READY, lookback=12),
        deployment("acme/churn:2", DEPLOYING),
        deployment("acme/churn:3", FAILED),
        deployment("globex/iris:1", READY, "public"),
        deployment("globex/secret:1", READY),
    )
    return found


def test_views_are_frozen_and_their_options_read_only(catalog: Catalog) -> None:
    version = catalog.version(ModelRef("acme", "churn", 1), ACME)
    model = catalog.model("acme", "churn", ACME)
    readiness = catalog.readiness()

    for view, field in ((version, "status"), (model, "versions"), (readiness, "versions")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(view, field, None)
    with pytest.raises(TypeError):
        version.options["lookback"] = 1  # type: ignore[index]
    assert version.options["lookback"] == 12


def test_a_version_view_shows_the_version_and_its_deployment(catalog: Catalog) -> None:
    version = catalog.version(ModelRef("acme", "churn", 3), ACME)

    assert (version.owner, version.name, version.number) == ("acme", "churn", 3)
    assert version.deployment_id == deployment_id("acme", "churn", 3)
    assert version.status is FAILED
    assert not version.ready
    assert version.description == "churn v3"
    assert version.runtime == "python"
    assert version.visibility == "private"
    assert not version.public
    assert (version.replicas_min, version.replicas_max) == (1, 1)
    assert version.batching is not None
    assert version.load_error().message == (
        "model 'acme/churn:3' failed to load: it has not finished loading"
    )


def test_each_viewer_sees_its_owners_models_and_public_ones(catalog: Catalog) -> None:
    def names(viewer: Principal) -> list[str]:
        return [f"{m.owner}/{m.name}" for m in catalog.models(viewer)]

    assert names(ACME) == ["acme/churn", "globex/iris"]
    assert names(GLOBEX) == ["globex/iris", "globex/secret"]
    assert names(ANONYMOUS) == ["globex/iris"]
    assert names(ADMIN) == ["acme/churn", "globex/iris", "globex/secret"]


def test_a_model_another_owner_may_not_see_is_not_found_by_any_lookup(catalog: Catalog) -> None:
    hidden = deployment_id("globex", "secret", 1)

    with pytest.raises(ModelNotFound):
        catalog.model("globex", "secret", ACME)
    with pytest.raises(ModelNotFound):
        catalog.version(ModelRef("globex", "secret", 1), ACME)
    with pytest.raises(ModelNotFound):
        catalog.lookup("globex/secret", ACME)
    with pytest.raises(ModelNotFound):
        catalog.by_model_id("globex-secret", ACME)
    with pytest.raises(DeploymentNotFound):
        catalog.by_id(hidden, ACME)
    with pytest.raises(ModelNotFound):
        catalog.environment("globex", "secret", "production", ACME)
    assert catalog.by_id(hidden, GLOBEX).slug == "globex/secret"


def test_an_unknown_version_is_version_not_found_listing_those_that_exist(
    catalog: Catalog,
) -> None:
    with pytest.raises(VersionNotFound, match="versions that exist: 1, 2, 3"):
        catalog.version(ModelRef("acme", "churn", 9), ACME)
    with pytest.raises(ModelNotFound):
        catalog.lookup("acme/-x", ACME)  # a name no model could have


def test_a_model_view_has_its_versions_oldest_first_and_its_latest_ready_one(
    catalog: Catalog,
) -> None:
    model = catalog.model("acme", "churn", ACME)

    assert [v.number for v in model.versions] == [1, 2, 3]
    assert model.latest_version == 1
    assert model.description == "churn v3"  # the newest version's
    assert model.model_id == "acme-churn"
    # Without a number: the latest ready version, as a plain owner/name runs it.
    assert catalog.version(ModelRef("acme", "churn"), ACME).number == 1
    assert catalog.by_model_id("acme-churn", ACME).name == "churn"


def test_readiness_counts_every_status_and_shows_a_viewer_only_its_own(catalog: Catalog) -> None:
    everything = catalog.readiness()

    assert everything.counts() == {
        "building": 0,
        "deploying": 1,
        "ready": 3,
        "failed": 1,
        "stopped": 0,
    }
    assert everything.loading
    assert not everything.all_ready
    assert everything.models_ready  # each model has a version ready
    assert catalog.readiness(GLOBEX).statuses() == {
        "globex/iris:1": "ready",
        "globex/secret:1": "ready",
    }
    assert catalog.readiness(ANONYMOUS).statuses() == {"globex/iris:1": "ready"}


def test_readiness_of_named_models_is_of_the_versions_that_answer_them(catalog: Catalog) -> None:
    named = catalog.readiness(refs=[ModelRef("globex", "iris"), ModelRef("acme", "churn")])

    assert [str(v.ref) for v in named.versions] == ["globex/iris:1", "acme/churn:1"]
    assert named.all_ready
    assert not named.loading
    with pytest.raises(ModelNotFound):
        catalog.readiness(refs=[ModelRef("acme", "nothing")])


def test_a_model_with_no_version_ready_is_not_ready() -> None:
    catalog, _, _ = catalog_of(deployment("a/b:1", FAILED), deployment("c/d:1", READY))

    assert not catalog.readiness().models_ready
    assert not catalog.readiness().loading


def test_a_view_is_built_once_and_again_only_when_its_deployment_changes() -> None:
    loading = deployment("acme/churn:1", DEPLOYING)
    catalog, _, _ = catalog_of(loading)
    before = catalog.version(ModelRef("acme", "churn", 1), ACME)
    assert catalog.version(ModelRef("acme", "churn", 1), ACME) is before  # cached

    loading.signature = Signature({"type": "object"}, {"type": "object"})
    loading._settle(READY, None)
    after = catalog.version(ModelRef("acme", "churn", 1), ACME)

    assert before.status is DEPLOYING
    assert before.signature is None
    assert after.status is READY
    assert after.signature == loading.signature
    assert after.environments == ("production", "development")


def test_a_replicas_failed_setup_shows_in_the_logs_at_once() -> None:
    loading = deployment("acme/churn:1", DEPLOYING)
    catalog, _, _ = catalog_of(loading)
    assert catalog.version(ModelRef("acme", "churn", 1), ACME).logs == ""

    loading._setup_failed(ModelLoadFailed("acme/churn:1", "boom", "Traceback: boom\n"))

    assert "replica setup failed: boom" in catalog.version(ModelRef("acme", "churn", 1), ACME).logs


async def test_environments_move_with_assignments_and_with_the_latest_ready_version() -> None:
    v1, v2 = deployment("acme/churn:1", READY), deployment("acme/churn:2", DEPLOYING)
    catalog, _, environments = catalog_of(v1, v2)
    await environments.load()

    def serving() -> dict[int, tuple[str, ...]]:
        return {v.number: v.environments for v in catalog.model("acme", "churn", ACME).versions}

    assert serving() == {1: ("production",), 2: ("development",)}
    v2._settle(READY, None)
    assert serving() == {1: (), 2: ("production", "development")}
    assigned = await catalog.assign("acme", "churn", "staging", 1, ADMIN)
    assert assigned.environments == ("staging",)
    assert serving() == {1: ("staging",), 2: ("production", "development")}
    assert catalog.environments("acme", "churn", ACME) == ["production", "development", "staging"]
    assert catalog.environment("acme", "churn", "staging", ACME).number == 1


async def test_a_version_loading_after_the_first_start_keeps_the_server_ready() -> None:
    at_startup, _, _ = catalog_of(deployment("acme/pushed:1", DeploymentStatus.BUILDING))
    assert at_startup.readiness().loading, "until the first start has settled, it counts"
    catalog, deployments, _ = catalog_of()
    deployments.start(1)
    await deployments.started()

    deployments._add(deployment("c/d:1", READY))
    deployments._add(deployment("acme/pushed:1", DeploymentStatus.BUILDING))  # pushed since
    readiness = catalog.readiness()

    assert readiness.started
    assert not readiness.loading
    assert readiness.all_ready
    assert readiness.models_ready
