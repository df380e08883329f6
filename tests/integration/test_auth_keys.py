"""API keys in use: owners and public models, every header form, revocation and expiry taking
effect, rate limits, the per-owner limit, and --no-auth.

Nothing here times the server: how soon a revocation elsewhere shows, the instant a key expires
and how a rate refills are clock arithmetic, tested with injected clocks in
tests/unit/auth/test_authenticator.py; that a wrong key of any length is refused as fast is
measured by bench/auth_overhead.py."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from _app import FIXTURES, NativeApi, fixture_repository, serving
from typer.testing import CliRunner

from foretell.auth import KeyManager
from foretell.cli.main import app as cli
from foretell.config import Settings
from foretell.domain.access import Scope
from foretell.store import PredictionStore

pytestmark = pytest.mark.anyio

REVOCATION_SEEN_WITHIN_S = 30.0  # the cache keeps a key 0.5 s; the rest is for a busy machine


class Keys:
    def __init__(self, api: NativeApi) -> None:
        self.api = api
        self.manager: KeyManager = api.app.state.keys

    async def make(self, owner: str, scope: Scope = Scope.PREDICT, **options: Any) -> str:
        return (await self.manager.create(owner=owner, scope=scope, **options)).key

    async def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A request with exactly `headers` (not the test client's admin key)."""
        transport = self.api.http._transport
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.request(method, path, headers=headers or {}, **kwargs)

    async def as_(self, key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.call(method, path, {"Authorization": f"Bearer {key}"}, **kwargs)

    async def predict(self, key: str, model: str, **input: Any) -> httpx.Response:
        body = {"model": model, "input": input or {"text": "x"}}
        return await self.as_(key, "POST", "/v1/predictions", json=body)


@pytest.fixture(scope="module")
async def keys(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Keys]:
    base = tmp_path_factory.mktemp("keys")
    repo = fixture_repository(
        base / "repository",
        {
            "acme/echo": "echo",
            "acme/sleeps": "sleeps",
            "globex/echo": "echo",
            "globex/shared": "echo-public",
        },
    )
    settings = Settings(repository=repo, data_dir=base / "data", max_unfinished_per_owner=3)
    async with serving(settings) as api:
        yield Keys(api)


async def test_a_key_runs_its_owners_models_and_public_ones_only(keys: Keys) -> None:
    acme = await keys.make("acme")
    assert (await keys.predict(acme, "acme/echo")).status_code == 201
    assert (await keys.predict(acme, "globex/shared")).status_code == 201
    refused = await keys.predict(acme, "globex/echo")
    assert refused.status_code == 404
    assert refused.json() == {"detail": "model 'globex/echo' not found"}
    listed = await keys.as_(acme, "GET", "/v1/models")
    names = [f"{m['owner']}/{m['name']}" for m in listed.json()["results"]]
    assert names == ["acme/echo", "acme/sleeps", "globex/shared"]
    admin = await keys.make("root", Scope.ADMIN)
    everything = await keys.as_(admin, "GET", "/v1/models")
    assert len(everything.json()["results"]) == 4


async def test_a_key_sees_only_its_owners_predictions_and_an_admin_all(keys: Keys) -> None:
    acme, other_acme = await keys.make("acme"), await keys.make("acme", Scope.READ)
    globex, admin = await keys.make("globex"), await keys.make("root", Scope.ADMIN)
    mine = (await keys.predict(acme, "globex/shared")).json()["id"]
    theirs = (await keys.predict(globex, "globex/shared")).json()["id"]

    async def listed(key: str) -> set[str]:
        response = await keys.as_(key, "GET", "/v1/predictions", params={"limit": 1000})
        return {p["id"] for p in response.json()["results"]}

    assert mine in await listed(other_acme), "another key of the same owner sees it"
    assert theirs not in await listed(acme)
    assert mine not in await listed(globex)
    assert {mine, theirs} <= await listed(admin)
    hidden = await keys.as_(acme, "GET", f"/v1/predictions/{theirs}")
    assert hidden.status_code == 404
    assert hidden.json() == {"detail": f"prediction '{theirs}' not found"}
    no_cancel = await keys.as_(acme, "POST", f"/v1/predictions/{theirs}/cancel")
    assert no_cancel.status_code == 404


@pytest.mark.parametrize(
    "form",
    [
        "Authorization: Bearer {}",
        "Authorization: bearer {}",
        "Authorization: Token {}",
        "Authorization: Api-Key {}",
        "X-API-Key: {}",
    ],
)
async def test_every_seeds_header_form_is_accepted(keys: Keys, form: str) -> None:
    key = await keys.make("acme", Scope.READ)
    name, value = form.format(key).split(": ", 1)
    response = await keys.call("GET", "/v1/models", {name: value})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("Basic {}", "scheme is not one foretell accepts (Basic)"),
        ("{}", "scheme is not one foretell accepts (that scheme)"),
        ("Bearer", "has no key after 'Bearer'"),
        ("Bearer {} {}", "has no key after 'Bearer' (or more than one word)"),
    ],
)
async def test_a_malformed_header_is_401_naming_the_forms_never_the_key(
    keys: Keys, header: str, said: str
) -> None:
    key = await keys.make("acme", Scope.READ)
    response = await keys.call("GET", "/v1/models", {"Authorization": header.format(key, key)})
    assert response.status_code == 401
    detail = response.json()["detail"]
    assert said in detail
    assert "Authorization: Token <key>, Authorization: Api-Key <key> or X-API-Key" in detail
    assert key not in response.text
    assert key[3:11] not in response.text, "not even its prefix"


async def test_a_revocation_through_the_api_takes_effect_at_once(keys: Keys) -> None:
    admin = await keys.make("root", Scope.ADMIN)
    made = await keys.as_(admin, "POST", "/v1/keys", json={"owner": "acme", "scope": "read"})
    assert made.status_code == 201
    key, key_id = made.json()["key"], made.json()["id"]
    assert (await keys.as_(key, "GET", "/v1/models")).status_code == 200
    revoked = await keys.as_(admin, "DELETE", f"/v1/keys/{key_id}")
    assert revoked.json()["revoked_at"] is not None
    after = await keys.as_(key, "GET", "/v1/models")
    assert after.status_code == 401
    assert after.json() == {"detail": f"API key {key_id} was revoked"}


async def test_a_revocation_by_another_process_takes_effect_within_a_second(
    keys: Keys,
) -> None:
    key = await keys.make("acme", Scope.READ)
    assert (await keys.as_(key, "GET", "/v1/models")).status_code == 200
    settings: Settings = keys.api.app.state.settings
    other = await PredictionStore.open(settings.database_url)  # as `foretell keys revoke` does
    try:
        await KeyManager(other.keys).revoke(key[: len("ft_") + 8])  # by its prefix
    finally:
        await other.close()
    # The server was not told: its cache (FRESH_S, 0.5 s) lets the key in until it reads the
    # store again. Wait for that, generously: a busy machine may stall for seconds.
    deadline = time.monotonic() + REVOCATION_SEEN_WITHIN_S
    while (after := await keys.as_(key, "GET", "/v1/models")).status_code == 200:
        assert time.monotonic() < deadline, f"still accepted {REVOCATION_SEEN_WITHIN_S:g} s on"
        await asyncio.sleep(0.02)
    assert after.status_code == 401, after.text
    assert after.json()["detail"].endswith("was revoked")


async def test_a_key_is_accepted_until_it_expires_then_refused_saying_when(keys: Keys) -> None:
    lasting = await keys.make("acme", Scope.READ, expires_in=timedelta(hours=1))
    assert (await keys.as_(lasting, "GET", "/v1/models")).status_code == 200
    made = await keys.manager.create(
        owner="acme", scope=Scope.READ, expires_in=timedelta(milliseconds=50)
    )
    expires_at = made.record.expires_at
    assert expires_at is not None
    # Past its expiry by the wall clock, with room for the clock's steps; a stall only adds.
    await asyncio.sleep((expires_at - datetime.now(UTC)).total_seconds() + 0.05)
    response = await keys.as_(made.key, "GET", "/v1/models")
    assert response.status_code == 401
    shown = expires_at.isoformat(timespec="seconds")
    assert response.json()["detail"] == f"API key {made.record.id} expired at {shown}"


async def test_a_key_over_its_rate_is_429_with_retry_after(keys: Keys) -> None:
    # One request per 100 s after a burst of 2: only a 100 s stall could refill it meanwhile.
    key = await keys.make("acme", Scope.READ, rate_per_s=0.01, burst=2)
    started = time.monotonic()
    statuses = [(await keys.as_(key, "GET", "/v1/models")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = await keys.as_(key, "GET", "/v1/models")
    elapsed = time.monotonic() - started
    # The wait for the next token: 100 s less what has refilled since the burst was spent.
    assert 100 - math.ceil(elapsed) <= int(refused.headers["retry-after"]) <= 100
    assert "over its rate limit of 0.01 requests/s (bursts of 2)" in refused.json()["detail"]


async def test_an_owner_at_its_unfinished_limit_is_429_until_one_finishes(keys: Keys) -> None:
    acme = await keys.make("acme")
    admin = await keys.make("root", Scope.ADMIN)
    ids = []
    for _ in range(3):  # the limit (max_unfinished_per_owner=3); canceled below
        response = await keys.predict(acme, "acme/sleeps", seconds=30)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    refused = await keys.predict(acme, "acme/sleeps", seconds=30)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["detail"] == (
        "owner 'acme' already has 3 asynchronous predictions unfinished, the limit; wait for "
        "some to finish (or cancel them) and retry"
    )
    assert (await keys.predict(await keys.make("globex"), "globex/shared")).status_code == 201
    for prediction_id in ids:
        await keys.as_(admin, "POST", f"/v1/predictions/{prediction_id}/cancel")
    again = await keys.predict(acme, "acme/echo")
    assert again.status_code == 201, again.text


async def test_without_auth_every_route_is_open(serve: Any) -> None:
    async with serve({"acme/echo": FIXTURES / "echo"}, auth=False) as api:
        transport = api.http._transport
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.post(
                "/v1/predictions", json={"model": "acme/echo", "input": {"text": "x"}}
            )
        assert response.status_code == 201, response.text
        settings: Settings = api.app.state.settings
        assert not (settings.data_dir / "admin-key").exists(), "no key made without auth"


def test_no_auth_refuses_to_serve_beyond_this_machine(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["serve", str(tmp_path), "--no-auth", "--host", "0.0.0.0", "--port", "9"]
    )
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "--no-auth lets anyone in, so it serves only on this machine" in said
    assert "'0.0.0.0' is not a loopback address" in said


def test_keys_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    runner, data = CliRunner(), ["--data-dir", str(tmp_path)]
    env = {"FORETELL_DATA_DIR": None, "FORETELL_DB": None}
    made = runner.invoke(
        cli,
        ["keys", "create", "--owner", "acme", "--scope", "read", "--name", "ci", *data],
        env=env,
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("ft_")
    assert "store it now, it cannot be shown again" in " ".join(made.stderr.split())
    listed = runner.invoke(cli, ["keys", "list", "--json", *data], env=env)
    (entry,) = json.loads(listed.stdout)["results"]
    assert entry["owner"] == "acme"
    assert entry["scope"] == "read"
    assert entry["name"] == "ci"
    assert key.startswith(entry["prefix"] + "_")
    assert key not in listed.stdout
    revoked = runner.invoke(cli, ["keys", "revoke", entry["prefix"], *data], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked {entry['id']}" in revoked.stdout
    unknown = runner.invoke(cli, ["keys", "revoke", "ft_nope", *data], env=env)
    assert unknown.exit_code == 2
    assert "no API key with id or prefix 'ft_nope'" in unknown.output
    bad = runner.invoke(cli, ["keys", "create", "--owner", "Acme Corp", *data], env=env)
    assert bad.exit_code == 2
    assert "owner: 'Acme Corp' is not an owner name" in " ".join(bad.output.split())


async def test_metrics_can_be_closed_to_callers_without_a_read_key(serve: Any) -> None:
    async with serve({"acme/echo": FIXTURES / "echo"}, metrics_open=False) as api:
        transport = api.http._transport
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            closed = await http.get("/metrics")
            live = await http.get("/health/live")
        opened = await api.http.get("/metrics")  # as the admin key
    assert closed.status_code == 401
    assert live.status_code == 200, "health stays open"
    assert opened.status_code == 200
    assert "foretell_predictions" in opened.text
