"""A key's lifetime, rate and burst are bounded: past the limits they overflowed a datetime,
SQLite's 64-bit integer or a Retry-After (500s); now the API answers 422 naming the field and
its limit, and the CLI says so and exits non-zero, without a traceback."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _app import NativeApi, model_repository, serving
from typer.testing import CliRunner

from foretell.cli.main import app as cli
from foretell.config import Settings
from foretell.domain.access import Scope
from foretell.errors import InvalidRequest

pytestmark = pytest.mark.anyio

KEY = {"owner": "acme", "scope": "predict"}
# The documented limits (foretell.auth.keys), spelled out so that a change to them shows here.
MAX_LIFETIME_S = 3650 * 86400
MIN_RATE_PER_S = 0.001
MAX_RATE_PER_S = 1_000_000.0
MAX_BURST = 1_000_000


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NativeApi]:
    """An app with no models: only its keys are used."""
    base = tmp_path_factory.mktemp("key-limits")
    settings = Settings(repository=model_repository(base / "repository"), data_dir=base / "data")
    async with serving(settings) as app:
        yield app


@pytest.mark.parametrize(
    ("field", "value", "kind", "limit"),
    [
        pytest.param("expires_in_s", 1e12, "less_than_equal", {"le": MAX_LIFETIME_S}, id="1e12s"),
        pytest.param(
            "expires_in_s",
            MAX_LIFETIME_S + 1,
            "less_than_equal",
            {"le": MAX_LIFETIME_S},
            id="lifetime-past-limit",
        ),
        pytest.param("burst", 2**63, "less_than_equal", {"le": MAX_BURST}, id="burst-2^63"),
        pytest.param("burst", 10**20, "less_than_equal", {"le": MAX_BURST}, id="burst-10^20"),
        pytest.param("burst", MAX_BURST + 1, "less_than_equal", {"le": MAX_BURST}, id="burst"),
        pytest.param(
            "rate_per_s", 5e-324, "greater_than_equal", {"ge": MIN_RATE_PER_S}, id="rate-tiny"
        ),
        pytest.param(
            "rate_per_s",
            MAX_RATE_PER_S * 10,
            "less_than_equal",
            {"le": MAX_RATE_PER_S},
            id="rate-huge",
        ),
    ],
)
async def test_a_setting_past_its_limit_is_422_naming_field_and_limit(
    api: NativeApi, field: str, value: Any, kind: str, limit: dict[str, Any]
) -> None:
    response = await api.http.post("/v1/keys", json={**KEY, field: value})

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"], error["ctx"]) == (["body", field], kind, limit)
    assert str(next(iter(limit.values()))).removesuffix(".0") in error["msg"]


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        pytest.param(
            {"expires_in": timedelta(days=99_999_999)},
            "expires: 99999999 days is more than the limit of 3650 days",
            id="expires",
        ),
        pytest.param({"burst": 2**63}, "burst: 9223372036854775808 is out of range", id="burst"),
        pytest.param({"rate_per_s": math.nan}, "rate: nan requests/s is out of range", id="nan"),
        pytest.param({"rate_per_s": math.inf}, "rate: inf requests/s is out of range", id="inf"),
    ],
)
async def test_the_key_manager_refuses_them_for_every_caller(
    api: NativeApi, setting: dict[str, Any], said: str
) -> None:
    with pytest.raises(InvalidRequest, match=said):
        await api.app.state.keys.create(owner="acme", scope=Scope.READ, **setting)


async def test_the_limits_themselves_are_accepted_and_enforced(api: NativeApi) -> None:
    response = await api.http.post(
        "/v1/keys",
        json={**KEY, "expires_in_s": MAX_LIFETIME_S, "rate_per_s": MIN_RATE_PER_S, "burst": 1},
    )
    assert response.status_code == 201, response.text
    key = response.json()["key"]
    headers = {"Authorization": f"Bearer {key}"}

    assert (await api.http.get("/v1/models", headers=headers)).status_code == 200
    limited = await api.http.get("/v1/models", headers=headers)
    assert limited.status_code == 429, limited.text
    assert 1 <= int(limited.headers["Retry-After"]) <= 1 / MIN_RATE_PER_S


@pytest.mark.parametrize(
    ("option", "said"),
    [
        pytest.param(["--expires", "99999999d"], "more than the limit of 3650d", id="expires"),
        pytest.param(["--expires", "9" * 30 + "d"], "more than the limit of 3650d", id="huge"),
        pytest.param(["--expires", "3651d"], "more than the limit of 3650d", id="just-past"),
        pytest.param(["--burst", str(10**20)], "it must be from 1 to 1000000", id="burst"),
        pytest.param(["--rate", "1e400"], "inf requests/s is out of range", id="rate"),
        pytest.param(["--rate", "nan"], "nan requests/s is out of range", id="rate-nan"),
        pytest.param(["--rate", "0.0001"], "it must be from 0.001 to 1e+06", id="rate-tiny"),
    ],
)
def test_the_cli_says_which_limit_and_exits_without_a_traceback(
    tmp_path: Path, option: list[str], said: str
) -> None:
    env = {"FORETELL_DATA_DIR": None, "FORETELL_DB": None}
    made = CliRunner().invoke(
        cli,
        ["keys", "create", "--owner", "acme", *option, "--data-dir", str(tmp_path)],
        env=env,
    )

    assert made.exit_code == 2, made.output
    assert isinstance(made.exception, SystemExit), made.exception
    assert "Traceback" not in made.output
    assert said in " ".join(made.output.replace("│", " ").split())
