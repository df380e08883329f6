"""Client for the native API over httpx: error answers raise ApiError (status and the server's
detail), no answer raises Unreachable; both are ForetellErrors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from foretell import errors

_PUSH_CHUNK = 256 * 1024  # an archive is sent in pieces this large, each reported
# A deployment change answers once the version has settled: its environment's build (the
# server's build_timeout_s, 900 s by default) and its replicas' setup (timeouts.setup_s, 300 s).
SETTLE_TIMEOUT_S = 1800.0


class ApiError(errors.ForetellError):
    """An error response with no narrower class; keeps the status and the server's detail."""

    code = "api_error"

    def __init__(self, status: int, detail: Any) -> None:
        message = detail if isinstance(detail, str) else _summarize(detail)
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.detail = detail


class Unreachable(errors.ForetellError):
    """No answer from the server: refused, timed out or cut off."""

    code = "unreachable"

    def __init__(self, url: str, cause: Exception) -> None:
        super().__init__(f"cannot reach {url}: {cause or type(cause).__name__}")
        self.url = url


class Client:
    """`Client("http://127.0.0.1:8080", token=...)`; every method returns parsed JSON."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 90.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def create_prediction(
        self,
        model: str,
        input: dict[str, Any],
        *,
        wait: int | None = None,
        webhook: str | None = None,
        webhook_events: list[str] | None = None,
    ) -> dict[str, Any]:
        headers = {"Prefer": f"wait={wait}"} if wait else {}
        body: dict[str, Any] = {"model": model, "input": input}
        if webhook is not None:
            body["webhook"] = webhook
            if webhook_events:
                body["webhook_events_filter"] = webhook_events
        return self._call("POST", "/v1/predictions", json=body, headers=headers)

    def get_prediction(self, prediction_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/predictions/{prediction_id}")

    def list_predictions(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        return self._call("GET", "/v1/predictions", params=params)

    def cancel_prediction(self, prediction_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/predictions/{prediction_id}/cancel")

    def list_models(self) -> dict[str, Any]:
        return self._call("GET", "/v1/models")

    def get_model(self, owner: str, name: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/models/{owner}/{name}")

    def change_deployment(
        self,
        owner: str,
        name: str,
        version: int,
        *,
        state: str | None = None,
        replicas: int | dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Start (`state="started"`) or stop (`"stopped"`) a version, or set its replicas (a
        count, or {min, max, idle_s, target_wait_s}): the version's record once settled."""
        body: dict[str, Any] = {}
        if state is not None:
            body["state"] = state
        if replicas is not None:
            body["replicas"] = replicas
        path = f"/v1/models/{owner}/{name}/versions/{version}/deployment"
        waits = httpx.Timeout(self._http.timeout.connect, read=SETTLE_TIMEOUT_S)
        return self._call("POST", path, json=body, timeout=waits)

    def rescan(self) -> dict[str, Any]:
        """Read the model repository again: {"added": [...], "removed": [...]}."""
        return self._call("POST", "/v1/repository/rescan")

    def list_environments(self, owner: str, name: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/models/{owner}/{name}/environments")

    def assign_environment(
        self, owner: str, name: str, environment: str, version: int
    ) -> dict[str, Any]:
        path = f"/v1/models/{owner}/{name}/environments/{environment}"
        return self._call("PUT", path, json={"version_number": version})

    def get_version(self, owner: str, name: str, version: int) -> dict[str, Any]:
        return self._call("GET", f"/v1/models/{owner}/{name}/versions/{version}")

    def push(
        self,
        owner: str,
        name: str,
        archive: Path,
        *,
        on_sent: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Send a model folder's tar (gzip or plain) at `archive` as the next version of
        `owner/name`: its record, deploying. `on_sent(sent, total)` follows the upload."""
        total = archive.stat().st_size

        def chunks() -> Iterator[bytes]:
            sent = 0
            with archive.open("rb") as source:
                while chunk := source.read(_PUSH_CHUNK):
                    yield chunk
                    sent += len(chunk)
                    if on_sent is not None:
                        on_sent(sent, total)

        headers = {"Content-Type": "application/gzip", "Content-Length": str(total)}
        path = f"/v1/models/{owner}/{name}/versions"
        return self._call("POST", path, content=chunks(), headers=headers)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(str(self._http.base_url), exc) from exc
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text}
        if response.is_error:
            raise ApiError(response.status_code, body.get("detail", body))
        result: dict[str, Any] = body
        return result


def _summarize(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}"
            for e in detail
            if isinstance(e, dict)
        )
    return str(detail)
