"""A key request takes exactly the JSON types it publishes (`"expires_in_s": true` made a key
that expired in 1 s, `"burst": "5"` passed), and the owner `admin` is the admin key's alone: a
read key of that owner saw every prediction the first admin key had made."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _app import NativeApi, models_repository, serving
from typer.testing import CliRunner

from foretell.cli.main import app as cli
from foretell.config import Settings
from foretell.domain.access import Scope
from foretell.errors import InvalidRequest

pytestmark = pytest.mark.anyio

KEY = {"owner": "acme", "scope": "predict"}
RESERVED = "'admin' is reserved for admin keys"


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NativeApi]:
    base = tmp_path_factory.mktemp("key-strictness")
    repository = models_repository(base / "repository", ["fixtures/echo"])
    settings = Settings(repository=repository, data_dir=base / "data")
    async with serving(settings) as app:
        yield app


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        pytest.param("expires_in_s", True, "float_type", id="expires-true"),
        pytest.param("expires_in_s", "60", "float_type", id="expires-string"),
        pytest.param("rate_per_s", True, "float_type", id="rate-true"),
        pytest.param("rate_per_s", "2.5", "float_type", id="rate-string"),
        pytest.param("burst", "5", "int_type", id="burst-string"),
        pytest.param("burst", True, "int_type", id="burst-true"),
        pytest.param("burst", 5.0, "int_type", id="burst-float"),
    ],
)
async def test_a_setting_of_another_json_type_is_422_naming_the_field(
    api: NativeApi, field: str, value: Any, kind: str
) -> None:
    before = len((await api.http.get("/v1/keys")).json()["results"])

    response = await api.http.post("/v1/keys", json={**KEY, field: value})

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", field], kind)
    assert len((await api.http.get("/v1/keys")).json()["results"]) == before


async def test_the_published_types_still_pass(api: NativeApi) -> None:
    """A whole number is a JSON number too: 60 for a float setting is not a coercion."""
    response = await api.http.post(
        "/v1/keys", json={**KEY, "expires_in_s": 60, "rate_per_s": 2, "burst": 5}
    )
    assert response.status_code == 201, response.text
    made = response.json()
    assert (made["rate_per_s"], made["burst"]) == (2.0, 5)


@pytest.mark.parametrize("scope", ["read", "predict"])
async def test_a_non_admin_key_owned_by_admin_is_422_naming_the_owner(
    api: NativeApi, scope: str
) -> None:
    before = len((await api.http.get("/v1/keys")).json()["results"])

    response = await api.http.post("/v1/keys", json={"owner": "admin", "scope": scope})

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "owner"], "owner_reserved")
    assert RESERVED in error["msg"]
    assert len((await api.http.get("/v1/keys")).json()["results"]) == before


async def test_the_admin_keys_predictions_stay_hidden_from_other_owners(api: NativeApi) -> None:
    """The first admin key (owner admin) still works, and may make another admin key of its
    owner; its predictions are seen by admin keys only."""
    made = await api.http.post(
        "/v1/predictions", json={"model": "fixtures/echo", "input": {"text": "x"}}
    )
    assert made.status_code == 201, made.text
    second = await api.http.post("/v1/keys", json={"owner": "admin", "scope": "admin"})
    assert second.status_code == 201, second.text
    reader = await api.http.post("/v1/keys", json={"owner": "acme", "scope": "read"})

    async with httpx.AsyncClient(transport=api.http._transport, base_url="http://test") as http:
        as_admin = {"Authorization": f"Bearer {second.json()['key']}"}
        as_reader = {"Authorization": f"Bearer {reader.json()['key']}"}
        seen = (await http.get("/v1/predictions", headers=as_admin)).json()["results"]
        hidden = await http.get(f"/v1/predictions/{made.json()['id']}", headers=as_reader)

    assert made.json()["id"] in {p["id"] for p in seen}
    assert hidden.status_code == 404, hidden.text


@pytest.mark.parametrize("scope", [Scope.READ, Scope.PREDICT])
async def test_the_key_manager_refuses_it_for_every_caller(api: NativeApi, scope: Scope) -> None:
    with pytest.raises(InvalidRequest, match=f"owner: {RESERVED}"):
        await api.app.state.keys.create(owner="admin", scope=scope)


def test_the_cli_refuses_it_and_exits_without_a_traceback(tmp_path: Path) -> None:
    env = {"FORETELL_DATA_DIR": None, "FORETELL_DB": None}
    made = CliRunner().invoke(
        cli,
        ["keys", "create", "--owner", "admin", "--scope", "read", "--data-dir", str(tmp_path)],
        env=env,
    )

    assert made.exit_code == 2, made.output
    assert "Traceback" not in made.output
    assert RESERVED in " ".join(made.output.replace("│", " ").split())
