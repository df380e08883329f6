"""Client for the native API over httpx: error answers raise ApiError (status and the server's
detail), no answer raises Unreachable; both are ForetellErrors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import EventSource, aconnect_sse, connect_sse

from foretell import errors
from foretell.client.events import STREAM_RETRIES, Resume, StreamEvent

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
    """`Client("http://127.0.0.1:8080", token=...)`; every method returns parsed JSON.
    `transport` replaces httpx's (an httpx.MockTransport in tests)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 90.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

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
        body = _create_body(model, input, webhook, webhook_events)
        return self._call("POST", "/v1/predictions", json=body, headers=headers)

    def stream(
        self,
        prediction_id: str | None = None,
        *,
        model: str | None = None,
        input: dict[str, Any] | None = None,
        webhook: str | None = None,
        webhook_events: list[str] | None = None,
        last_event_id: str | None = None,
        retries: int = STREAM_RETRIES,
    ) -> Iterator[StreamEvent]:
        """The events of prediction `prediction_id` (or of a new one: `model` and `input`) as
        they happen, until `done`. A dropped connection is resumed where it left off
        (Last-Event-ID; `retries` times in a row, then StreamCut): nothing is repeated or lost.
        `last_event_id` resumes a stream read before."""
        resume = Resume(prediction_id, last_event_id, retries)
        body = _stream_body(prediction_id, model, input, webhook, webhook_events)
        while not resume.done:
            try:
                with self._connect(resume, body) as source:
                    _check(source, resume)
                    for sse in source.iter_sse():
                        event = resume.take(sse.event, sse.data, sse.id or None)
                        if event is not None:
                            yield event
                if not resume.done:
                    resume.dropped("the server ended it before its end")
            except httpx.TransportError as exc:
                if resume.prediction_id is None:
                    raise Unreachable(str(self._http.base_url), exc) from exc
                resume.dropped(str(exc) or type(exc).__name__)
            if not resume.done:
                time.sleep(resume.backoff_s())

    def _connect(self, resume: Resume, body: dict[str, Any] | None) -> Any:
        if resume.prediction_id is None:
            return connect_sse(self._http, "POST", "/v1/predictions", json=body)
        return connect_sse(self._http, "GET", resume.path(), headers=resume.headers())

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
        return _answer(response)


class AsyncClient:
    """`AsyncClient("http://127.0.0.1:8080", token=...)`: Client's predictions, awaited."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 90.0,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.aclose()

    async def create_prediction(
        self,
        model: str,
        input: dict[str, Any],
        *,
        wait: int | None = None,
        webhook: str | None = None,
        webhook_events: list[str] | None = None,
    ) -> dict[str, Any]:
        headers = {"Prefer": f"wait={wait}"} if wait else {}
        body = _create_body(model, input, webhook, webhook_events)
        return await self._call("POST", "/v1/predictions", json=body, headers=headers)

    async def get_prediction(self, prediction_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/predictions/{prediction_id}")

    async def cancel_prediction(self, prediction_id: str) -> dict[str, Any]:
        return await self._call("POST", f"/v1/predictions/{prediction_id}/cancel")

    async def stream(
        self,
        prediction_id: str | None = None,
        *,
        model: str | None = None,
        input: dict[str, Any] | None = None,
        webhook: str | None = None,
        webhook_events: list[str] | None = None,
        last_event_id: str | None = None,
        retries: int = STREAM_RETRIES,
    ) -> AsyncIterator[StreamEvent]:
        """As Client.stream, awaited."""
        resume = Resume(prediction_id, last_event_id, retries)
        body = _stream_body(prediction_id, model, input, webhook, webhook_events)
        while not resume.done:
            try:
                async with self._connect(resume, body) as source:
                    if source.response.is_error:
                        await source.response.aread()
                    _check(source, resume)
                    async for sse in source.aiter_sse():
                        event = resume.take(sse.event, sse.data, sse.id or None)
                        if event is not None:
                            yield event
                if not resume.done:
                    resume.dropped("the server ended it before its end")
            except httpx.TransportError as exc:
                if resume.prediction_id is None:
                    raise Unreachable(str(self._http.base_url), exc) from exc
                resume.dropped(str(exc) or type(exc).__name__)
            if not resume.done:
                await asyncio.sleep(resume.backoff_s())

    def _connect(self, resume: Resume, body: dict[str, Any] | None) -> Any:
        if resume.prediction_id is None:
            return aconnect_sse(self._http, "POST", "/v1/predictions", json=body)
        return aconnect_sse(self._http, "GET", resume.path(), headers=resume.headers())

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(str(self._http.base_url), exc) from exc
        return _answer(response)


def _answer(response: httpx.Response) -> dict[str, Any]:
    """A read response's JSON; ApiError for an error answer."""
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text}
    if response.is_error:
        raise ApiError(response.status_code, body.get("detail", body))
    result: dict[str, Any] = body
    return result


def _check(source: EventSource, resume: Resume) -> None:
    """An error answer raises ApiError (its body already read); a new prediction's id is
    learned from the stream's headers, for resuming it."""
    response = source.response
    if response.is_error:
        if not response.is_stream_consumed:
            response.read()
        _answer(response)
    if resume.prediction_id is None:
        resume.prediction_id = response.headers.get("x-prediction-id")


def _create_body(
    model: str, input: dict[str, Any], webhook: str | None, webhook_events: list[str] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": input}
    if webhook is not None:
        body["webhook"] = webhook
        if webhook_events:
            body["webhook_events_filter"] = webhook_events
    return body


def _stream_body(
    prediction_id: str | None,
    model: str | None,
    input: dict[str, Any] | None,
    webhook: str | None,
    webhook_events: list[str] | None,
) -> dict[str, Any] | None:
    """The create body of a stream that makes its prediction; None for one that exists."""
    if prediction_id is not None:
        return None
    if model is None or input is None:
        raise TypeError("stream() needs a prediction id, or a model and an input to create one")
    return {**_create_body(model, input, webhook, webhook_events), "stream": True}


def _summarize(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}"
            for e in detail
            if isinstance(e, dict)
        )
    return str(detail)
