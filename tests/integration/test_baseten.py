"""Baseten (seed 004) against foretell: the seed's request with Baseten's host swapped for
foretell's — the model named by `model-{model_id}.` in the host — and its Api-Key header;
environments; errors in its `{"error": …}` envelope with the right status codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _app import DEMO, FIXTURES, serving

from foretell.config import Settings

pytestmark = pytest.mark.anyio

# The models `api` serves this module (conftest.py): only these start.
MODELS = ("demo/iris", "fixtures/raises-in-predict")

IRIS = {"features": [[5.1, 3.5, 1.4, 0.2]]}
# What each version of demo/iris answers for IRIS (onnxruntime on its model.onnx): both call it
# setosa, but version 1 (logistic regression) is never quite sure and version 2 (a random forest)
# is; so the probabilities tell which version, or whether some other model, answered.
IRIS_ANSWERS = {1: [0.98157942, 0.01842055, 0.0], 2: [1.0, 0.0, 0.0]}


def assert_iris(response: Any, version: int) -> None:
    """The answer is demo/iris version `version`'s output for IRIS, and nothing else."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["label", "probabilities"], body
    assert body["label"] == [0], body
    (row,) = body["probabilities"]
    assert row == pytest.approx(IRIS_ANSWERS[version], abs=1e-5), (version, body)


def api_key(api: Any) -> dict[str, str]:
    """Seed 004's header: `Authorization: Api-Key <key>`."""
    return {"Authorization": "Api-Key " + api.http.headers["Authorization"].split(" ", 1)[1]}


async def deployment_id(api: Any, model: str, version: int) -> str:
    body = (await api.http.get(f"/v1/models/{model}")).json()
    (found,) = [v for v in body["versions"] if v["version_number"] == version]
    return str(found["deployment"]["id"])


async def test_the_seed_request_on_a_model_host_runs_that_deployment(api: Any) -> None:
    deployment = await deployment_id(api, "demo/iris", 1)
    response = await api.http.post(
        f"http://model-demo-iris.api.example.com/deployment/{deployment}/predict",
        headers=api_key(api),
        json=IRIS,
    )
    assert_iris(response, 1)


async def test_curl_d_sends_form_encoding_and_still_works(api: Any) -> None:
    # `curl -d '{…}'` labels the body application/x-www-form-urlencoded: the JSON is still read.
    response = await api.http.post(
        "/model/demo-iris/production/predict",
        headers={**api_key(api), "Content-Type": "application/x-www-form-urlencoded"},
        content=b'{"features": [[5.1, 3.5, 1.4, 0.2]]}',
    )
    assert_iris(response, 2)  # production: the latest version


async def test_production_is_the_latest_ready_version_and_development_the_newest(
    api: Any,
) -> None:
    model = (await api.http.get("/v1/models/demo/iris")).json()
    assert model["model_id"] == "demo-iris"
    environments = (await api.http.get("/v1/models/demo/iris/environments")).json()
    assert [(e["environment"], e["version_number"]) for e in environments["results"]] == [
        ("production", 2),
        ("development", 2),
    ]
    for path in ("/production/predict", "/development/predict", "/environments/production/predict"):
        response = await api.http.post(
            path, headers={**api_key(api), "Host": "model-demo-iris.example.com"}, json=IRIS
        )
        assert_iris(response, 2)


async def test_an_environment_assigned_to_a_version_serves_it(tmp_path: Path) -> None:
    repo = tmp_path / "repository"
    (repo / "acme").mkdir(parents=True)
    (repo / "acme" / "iris").symlink_to(DEMO / "iris", target_is_directory=True)
    settings = Settings(repository=repo, data_dir=tmp_path / "data")
    async with serving(settings) as app:
        assigned = await app.http.put(
            "/v1/models/acme/iris/environments/staging", json={"version_number": 1}
        )
        assert assigned.status_code == 200, assigned.text
        assert assigned.json()["version_number"] == 1
        promoted = await app.http.put(
            "/v1/models/acme/iris/environments/production", json={"version_number": 1}
        )
        assert promoted.status_code == 200
        listed = (await app.http.get("/v1/models/acme/iris/environments")).json()["results"]
        assert [(e["environment"], e["version_number"]) for e in listed] == [
            ("production", 1),
            ("development", 2),
            ("staging", 1),
        ]
        version_1 = (await app.http.get("/v1/models/acme/iris/versions/1")).json()
        assert version_1["deployment"]["environments"] == ["production", "staging"]
        for path in (
            "/model/acme-iris/environments/staging/predict",
            "/model/acme-iris/production/predict",
        ):
            response = await app.http.post(path, headers=api_key(app), json=IRIS)
            assert_iris(response, 1)
        development = await app.http.post(
            "/model/acme-iris/development/predict", headers=api_key(app), json=IRIS
        )
        assert_iris(development, 2)
    async with serving(settings) as again:  # a restart on the same data dir keeps them
        listed = (await again.http.get("/v1/models/acme/iris/environments")).json()["results"]
        assert [(e["environment"], e["version_number"]) for e in listed] == [
            ("production", 1),
            ("development", 2),
            ("staging", 1),
        ]


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/model/demo-nope/production/predict", IRIS, 404, "model 'demo-nope' not found"),
        (
            "/model/demo-iris/deployment/0000beef/predict",
            IRIS,
            404,
            "deployment '0000beef' not found",
        ),
        (
            "/model/demo-iris/environments/staging/predict",
            IRIS,
            404,
            "model 'demo/iris' has no environment 'staging'; its environments: production, "
            "development",
        ),
        ("/production/predict", IRIS, 404, "no model named: call it on the host model-{model_id}"),
        (
            "/model/demo-iris/production/predict",
            {},
            400,
            "invalid input: input.features: Field required",
        ),
        (
            "/model/fixtures-raises-in-predict/production/predict",
            {"text": "x"},
            500,
            "the model failed: ValueError: boom: cannot predict",
        ),
    ],
)
async def test_errors_use_the_error_envelope_with_the_right_status(
    api: Any, path: str, body: Any, status: int, error: str
) -> None:
    response = await api.http.post(path, headers=api_key(api), json=body)
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"]
    assert response.json()["error"].startswith(error), response.json()


async def test_bad_json_is_400(api: Any) -> None:
    response = await api.http.post(
        "/model/demo-iris/production/predict", headers=api_key(api), content=b"{not json"
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("request body is not valid JSON")


async def test_a_model_still_deploying_is_503(serve: Any) -> None:
    async with serve({"acme/slow": FIXTURES / "slow-setup"}, ready=False) as app:
        response = await app.http.post(
            "/model/acme-slow/production/predict", headers=api_key(app), json={"x": 1}
        )
        assert response.status_code == 503
        assert response.json() == {
            "error": "model 'acme/slow:1' is not ready: deployment is deploying"
        }
        await app.wait_ready()


async def test_the_host_is_read_whatever_its_case_and_port(api: Any) -> None:
    for host in ("MODEL-demo-iris.Example.com", "model-demo-iris.example.com:8443"):
        response = await api.http.post(
            "/production/predict", headers={**api_key(api), "Host": host}, json=IRIS
        )
        assert_iris(response, 2)


async def test_a_host_that_only_looks_like_a_model_does_not_hide_a_deployment(api: Any) -> None:
    deployment = await deployment_id(api, "demo/iris", 1)
    response = await api.http.post(
        f"/deployment/{deployment}/predict",
        headers={**api_key(api), "Host": "model-server.internal"},
        json=IRIS,
    )
    assert_iris(response, 1)  # the deployment's version, whatever the host


async def test_a_model_id_two_models_share_is_refused_naming_both(tmp_path: Path) -> None:
    repo = tmp_path / "repository"
    for ref in ("a/b-c", "a-b/c"):
        (repo / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / ref).symlink_to(FIXTURES / "echo", target_is_directory=True)
    async with serving(Settings(repository=repo, data_dir=tmp_path / "data")) as app:
        response = await app.http.post(
            "/model/a-b-c/production/predict", headers=api_key(app), json={"text": "x"}
        )
    assert response.status_code == 400
    assert response.json() == {
        "error": "model id 'a-b-c' is ambiguous: it stands for a/b-c, a-b/c; call one of them "
        "by owner/name through another API"
    }


async def test_an_environment_whose_version_left_says_so_and_serves_nothing(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repository"
    (repo / "acme" / "iris").mkdir(parents=True)
    for version in ("1", "2"):
        (repo / "acme" / "iris" / version).symlink_to(DEMO / "iris" / version)
    settings = Settings(repository=repo, data_dir=tmp_path / "data")
    async with serving(settings) as app:
        assigned = await app.http.put(
            "/v1/models/acme/iris/environments/canary", json={"version_number": 2}
        )
        assert assigned.status_code == 200
    (repo / "acme" / "iris" / "2").unlink()  # version 2 leaves the repository
    async with serving(settings) as app:
        listed = (await app.http.get("/v1/models/acme/iris/environments")).json()["results"]
        response = await app.http.post(
            "/model/acme-iris/environments/canary/predict", headers=api_key(app), json=IRIS
        )
    assert listed[-1] == {
        "environment": "canary",
        "error": "model 'acme/iris' environment 'canary' cannot serve: it serves version 2, "
        "which is no longer in the repository; assign it another version",
    }
    assert response.status_code == 404
    assert "it serves version 2, which is no longer in the repository" in response.json()["error"]
