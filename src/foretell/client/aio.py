"""The asynchronous client: Client's prediction and file methods, awaited. The same calls
(calls.py), errors and retry policy; only the I/O is httpx.AsyncClient's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from foretell.client import calls
from foretell.client.calls import Call, Upload
from foretell.client.errors import ApiError, BadRequest, Unreachable, error_for
from foretell.client.events import STREAM_RETRIES, Resume, StreamEvent
from foretell.client.retry import Clock, Idempotence, Retry


class AsyncClient:
    """`AsyncClient("http://127.0.0.1:8080", token=...)`, used as `async with`: Client's
    predictions and files, awaited, with the same errors and retries."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 90.0,
        *,
        retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )
        self._retry = retry if retry is not None else Retry()
        self._clock = clock if clock is not None else Clock()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create_prediction(
        self,
        model: str,
        input: dict[str, Any],
        *,
        wait: int | bool | None = None,
        webhook: str | None = None,
        webhook_events: list[str] | None = None,
        validate_input: bool = False,
    ) -> dict[str, Any]:
        """As Client.create_prediction."""
        call = calls.create(
            model,
            await self._with_uploads(input),
            wait=wait,
            webhook=webhook,
            webhook_events=webhook_events,
            validate_input=validate_input,
        )
        return calls.answer(await self._send(call))

    async def predict(
        self,
        model: str,
        input: dict[str, Any],
        *,
        # Not asyncio.timeout's job: past it the caller gets WaitTimedOut with the record as it
        # stood (the prediction runs on), as from Client, not a bare cancellation.
        timeout: float | None = None,  # noqa: ASYNC109
        poll: float = calls.POLL_S,
        validate_input: bool = False,
    ) -> dict[str, Any]:
        """As Client.predict."""
        started = self._clock.now()
        wait = calls.first_wait(timeout)
        try:
            record = await self.create_prediction(
                model, input, wait=wait, validate_input=validate_input
            )
        except BadRequest as error:
            if not calls.wait_refused(error, wait):
                raise
            record = await self.create_prediction(
                model, input, wait=True, validate_input=validate_input
            )
        if record.get("status") in calls.TERMINAL:
            return record
        left = None if timeout is None else max(0.0, timeout - (self._clock.now() - started))
        return await self.wait(record, timeout=left, poll=poll)

    async def get_prediction(self, prediction_id: str) -> dict[str, Any]:
        return calls.answer(await self._send(calls.get(prediction_id)))

    async def wait(
        self,
        prediction: str | dict[str, Any],
        *,
        # Not asyncio.timeout's job: past it the caller gets WaitTimedOut with the record as it
        # stood (the prediction runs on), as from Client, not a bare cancellation.
        timeout: float | None = None,  # noqa: ASYNC109
        poll: float = calls.POLL_S,
    ) -> dict[str, Any]:
        """As Client.wait."""
        waiting = calls.Waiting(calls.prediction_id(prediction), timeout, poll, self._clock.now())
        while True:
            try:
                response = await self._send(waiting.call(self._clock.now()))
            except ApiError as error:
                if waiting.refused(error):
                    continue
                raise
            record = calls.answer(response)
            waited = "preference-applied" in response.headers
            pause = waiting.pause(record, waited, self._clock.now())
            if pause is None:
                return record
            if pause > 0:
                await self._clock.asleep(pause)

    async def cancel_prediction(self, prediction_id: str) -> dict[str, Any]:
        return calls.answer(await self._send(calls.cancel(prediction_id)))

    async def list_predictions(
        self,
        *,
        model: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """As Client.list_predictions."""
        return calls.answer(await self._send(calls.listing(model, status, limit, cursor)))

    async def iter_predictions(
        self, *, model: str | None = None, status: str | None = None, page_size: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        """As Client.iter_predictions."""
        cursor: str | None = None
        while True:
            page = await self.list_predictions(
                model=model, status=status, limit=page_size, cursor=cursor
            )
            for record in page["results"]:
                yield record
            cursor = calls.cursor_of(page.get("next"))
            if cursor is None:
                return

    async def upload(
        self, source: Upload, *, filename: str | None = None, content_type: str | None = None
    ) -> dict[str, Any]:
        """As Client.upload (a path or file object is read without yielding to the loop)."""
        return calls.answer(await self._send(calls.upload(source, filename, content_type)))

    async def _with_uploads(self, input: dict[str, Any]) -> dict[str, Any]:
        paths = calls.local_files(input)
        if not paths:
            return input
        ids = {path: str((await self.upload(path))["id"]) for path in paths}
        result: dict[str, Any] = calls.with_files(input, ids)
        return result

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
        if input is not None:
            input = await self._with_uploads(input)
        body = calls.stream_body(prediction_id, model, input, webhook, webhook_events)
        refusals, started = 0, self._clock.now()
        while not resume.done:
            try:
                async with self._connect(resume, body) as source:
                    if source.response.is_error:
                        await source.response.aread()
                    calls.check_stream(source, resume)
                    async for sse in source.aiter_sse():
                        event = resume.take(sse.event, sse.data, sse.id or None)
                        if event is not None:
                            yield event
                if not resume.done:
                    resume.dropped("the server ended it before its end")
            except ApiError as error:  # refused on opening, as any call may be
                refusals += 1
                kind = Idempotence.SAFE if resume.prediction_id else Idempotence.REFUSED_ONLY
                pause = self._retry.after(error, kind, refusals, self._clock.now() - started)
                if pause is None:
                    raise
                await self._clock.asleep(pause)
                continue
            except httpx.TransportError as exc:
                if resume.prediction_id is None:
                    raise Unreachable(str(self._http.base_url), exc) from exc
                resume.dropped(str(exc) or type(exc).__name__)
            if not resume.done:
                await self._clock.asleep(resume.backoff_s())

    def _connect(self, resume: Resume, body: dict[str, Any] | None) -> Any:
        if resume.prediction_id is None:
            return aconnect_sse(self._http, "POST", "/v1/predictions", json=body)
        return aconnect_sse(self._http, "GET", resume.path(), headers=resume.headers())

    async def _send(self, call: Call) -> httpx.Response:
        """As Client._send, awaited."""
        started = self._clock.now()
        attempt = 0
        while True:
            attempt += 1
            try:
                with call.options(self._http.timeout) as options:
                    response = await self._http.request(call.method, call.path, **options)
            except httpx.TransportError as exc:
                raise Unreachable(str(self._http.base_url), exc) from exc
            if not response.is_error:
                return response
            error = error_for(response)
            pause = self._retry.after(error, call.idempotence, attempt, self._clock.now() - started)
            if pause is None:
                raise error
            await self._clock.asleep(pause)
