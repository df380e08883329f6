"""What `foretell.service` offers the layers above: the prediction path and the catalog's views.
A deployment stays private to service (import-linter holds the direct imports; this holds the
re-exports, which it cannot see)."""

import foretell.service


def test_service_exports_the_prediction_path_and_the_catalog_only() -> None:
    assert sorted(foretell.service.__all__) == [
        "Catalog",
        "Lifecycle",  # versions added, removed, loaded and unloaded while the server runs
        "ModelView",
        "NewPrediction",
        "PredictionService",
        "Readiness",
        "Rescanned",  # what a Lifecycle.rescan added and removed
        "StatisticsView",  # the catalog's frozen snapshot of a version's inference statistics
        "Tallied",  # one count and its time, inside a StatisticsView
        "VersionView",
    ]


def test_no_deployment_is_reachable_from_the_service_package() -> None:
    for private in ("Deployment", "Deployments", "Environments", "model_id_of"):
        assert not hasattr(foretell.service, private), private
