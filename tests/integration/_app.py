"""The native API in-process for tests: a real app (lifespan, worker processes, SQLite file)
behind httpx, as its first admin key. Plain helpers (import with `from _app import ...`); the
fixtures that use them are in conftest.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from _readiness import READY_TIMEOUT_S, still_deploying
from fastapi import FastAPI

from foretell.api.app import asgi, create_app
from foretell.auth.keys import ADMIN_KEY_FILE
from foretell.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "models" / "demo"
FIXTURES = ROOT / "tests" / "fixtures" / "models" / "fixtures"

POLL_INTERVAL_S = 0.02
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})


def model_repository(root: Path, **links: Path) -> Path:
    """A model repository root whose owners are symlinks, e.g. demo=DEMO."""
    root.mkdir(parents=True)
    for owner, target in links.items():
        (root / owner).symlink_to(target, target_is_directory=True)
    return root


def models_repository(root: Path, refs: Iterable[str]) -> Path:
    """A repository of exactly these models, each a symlink to its folder: "demo/iris" is
    examples/models/demo/iris, "fixtures/echo" is tests/fixtures/models/fixtures/echo."""
    owners = {"demo": DEMO, "fixtures": FIXTURES}
    root.mkdir(parents=True)
    for ref in refs:
        owner, _, name = ref.partition("/")
        assert owner in owners, f"{ref!r}: models here are demo/<name> or fixtures/<name>"
        source = owners[owner] / name
        assert source.is_dir(), f"{ref!r}: no model folder {source}"
        (root / owner).mkdir(exist_ok=True)
        (root / ref).symlink_to(source, target_is_directory=True)
    return root


def fixture_repository(root: Path, models: dict[str, str]) -> Path:
    """A repository whose models are fixture models under other names: {"acme/echo": "echo"}."""
    for ref, fixture in models.items():
        (root / ref).parent.mkdir(parents=True, exist_ok=True)
        (root / ref).symlink_to(FIXTURES / fixture, target_is_directory=True)
    return root


def admin_key(data_dir: Path) -> str:
    return (data_dir / ADMIN_KEY_FILE).read_text().strip()


@asynccontextmanager
async def serving(settings: Settings, *, ready: bool = True) -> AsyncIterator[NativeApi]:
    """Run an app's lifespan; with `ready`, return only once no model is still deploying."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi(app)), base_url="http://test"
        ) as http,
    ):
        if settings.auth:  # as the first admin key, made at the first start
            http.headers["Authorization"] = f"Bearer {admin_key(settings.data_dir)}"
        api = NativeApi(http, app)
        if ready:
            await api.wait_ready()
        yield api


class NativeApi:
    """An httpx client on the app, with the few calls most tests repeat."""

    def __init__(self, http: httpx.AsyncClient, app: FastAPI) -> None:
        self.http = http
        self.app = app

    async def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> httpx.Response:
        """GET /health/ready until it answers 200 (no model still deploying)."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = await self.http.get("/health/ready")
            if response.status_code == 200:
                return response
            assert time.monotonic() < deadline, (
                f"not ready after {timeout_s:g} s: {still_deploying(response)}"
            )
            await asyncio.sleep(POLL_INTERVAL_S)

    async def post(
        self,
        model: str,
        input: dict[str, Any],
        *,
        prefer: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if prefer is not None:
            all_headers["Prefer"] = prefer
        return await self.http.post(
            "/v1/predictions", json={"model": model, "input": input}, headers=all_headers
        )

    async def create(self, model: str, input: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """POST a prediction that must be accepted (201); its record."""
        response = await self.post(model, input, **kwargs)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def get(self, prediction_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/predictions/{prediction_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_for(
        self, prediction_id: str, statuses: Iterable[str] = TERMINAL, timeout_s: float = 60.0
    ) -> dict[str, Any]:
        """Poll GET until the prediction's status is one of `statuses`; the default deadline is
        for a busy machine, far past what any fixture model takes."""
        wanted = set(statuses)
        deadline = time.monotonic() + timeout_s
        while True:
            record = await self.get(prediction_id)
            if record["status"] in wanted:
                return record
            assert time.monotonic() < deadline, f"still {record['status']}: {record}"
            await asyncio.sleep(POLL_INTERVAL_S)

    async def list_all(self, **params: Any) -> list[dict[str, Any]]:
        """Every prediction matching `params`, following `next` page by page."""
        records: list[dict[str, Any]] = []
        url: str | None = "/v1/predictions"
        query: dict[str, Any] | None = params
        while url is not None:
            response = await self.http.get(url, params=query)
            assert response.status_code == 200, response.text
            page = response.json()
            records.extend(page["results"])
            url, query = page["next"], None
        return records


# Fast retries, short attempts: what a test can wait out. Loopback receivers are allowed.
WEBHOOK_SETTINGS: dict[str, Any] = {
    "webhook_allow_private": True,
    "webhook_first_retry_s": 0.05,
    "webhook_max_retry_delay_s": 0.2,
    "webhook_timeout_s": 1.0,
    "webhook_retry_window_s": 60.0,
}
