"""The synchronous client of the native API over httpx. What it sends and how it reads answers
is calls.py's, shared with AsyncClient (aio.py); here is only the blocking I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from foretell.client import calls
from foretell.client.calls import Call, Upload
from foretell.client.errors import ApiError, BadRequest, Unreachable, error_for
from foretell.client.events import STREAM_RETRIES, Resume, StreamEvent
from foretell.client.retry import Clock, Idempotence, Retry

__all__ = ["SETTLE_TIMEOUT_S", "ApiError", "Client", "Unreachable"]

_PUSH_CHUNK = 256 * 1024  # an archive is sent in pieces this large, each reported
# A deployment change answers once the version has settled: its environment's build (the
# server's build_timeout_s, 900 s by default) and its replicas' setup (timeouts.setup_s, 300 s).
SETTLE_TIMEOUT_S = 1800.0


class Client:
    """`Client("http://127.0.0.1:8080", token=...)`; every method returns parsed JSON and
    raises a typed ApiError for an error answer (foretell.client.errors), Unreachable for none.
    A 429 or 503 is sent again after its Retry-After, as `retry` allows (Retry(attempts=1):
    never); a create only when the server refused it before making a record. `transport`
    replaces httpx's (an httpx.MockTransport in tests), `clock` the time retries wait on."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 90.0,
        *,
        retry: Retry | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )
        self._retry = retry if retry is not None else Retry()
        self._clock = clock if clock is not None else Clock()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # Predictions

    def create_prediction(
        self,
        model: str,
        input: dict[str, Any],
        *,
        wait: int | bool | None = None,
        webhook: str | None = None,
        webhook_events: list[str] | None = None,
        validate_input: bool = False,
    ) -> dict[str, Any]:
        """Start a prediction: its record, at once (`wait=N`: once it ends, or after N s;
        `wait=True`: the server's longest). A `Path` anywhere in `input` is uploaded first
        and sent as its file's id. `validate_input=True`: a bad input is refused with
        InvalidInput naming each field, before anything is recorded."""
        call = calls.create(
            model,
            self._with_uploads(input),
            wait=wait,
            webhook=webhook,
            webhook_events=webhook_events,
            validate_input=validate_input,
        )
        return calls.answer(self._send(call))

    def predict(
        self,
        model: str,
        input: dict[str, Any],
        *,
        timeout: float | None = None,
        poll: float = calls.POLL_S,
        validate_input: bool = False,
    ) -> dict[str, Any]:
        """Run a prediction to its end: its record, succeeded, failed or canceled (the server
        holds the create as long as it may, then wait() follows). WaitTimedOut past
        `timeout` seconds (None: no limit)."""
        started = self._clock.now()
        wait = calls.first_wait(timeout)
        try:
            record = self.create_prediction(model, input, wait=wait, validate_input=validate_input)
        except BadRequest as error:
            if not calls.wait_refused(error, wait):
                raise
            # The server's max_wait_s is under `wait`: refused before it created anything.
            record = self.create_prediction(model, input, wait=True, validate_input=validate_input)
        if record.get("status") in calls.TERMINAL:
            return record
        left = None if timeout is None else max(0.0, timeout - (self._clock.now() - started))
        return self.wait(record, timeout=left, poll=poll)

    def get_prediction(self, prediction_id: str) -> dict[str, Any]:
        return calls.answer(self._send(calls.get(prediction_id)))

    def wait(
        self,
        prediction: str | dict[str, Any],
        *,
        timeout: float | None = None,
        poll: float = calls.POLL_S,
    ) -> dict[str, Any]:
        """The prediction (its id or record) once it has ended. The server holds each GET
        until then (Prefer: wait); one that does not is asked every `poll` seconds.
        WaitTimedOut past `timeout` seconds (None: no limit), with the record as it stood."""
        waiting = calls.Waiting(calls.prediction_id(prediction), timeout, poll, self._clock.now())
        while True:
            try:
                response = self._send(waiting.call(self._clock.now()))
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
                self._clock.sleep(pause)

    def cancel_prediction(self, prediction_id: str) -> dict[str, Any]:
        return calls.answer(self._send(calls.cancel(prediction_id)))

    def list_predictions(
        self,
        *,
        model: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page, newest first: {"results": [...], "next": URL or None}; pass
        `cursor=page["next"]` for the next one, or use iter_predictions for them all."""
        return calls.answer(self._send(calls.listing(model, status, limit, cursor)))

    def iter_predictions(
        self, *, model: str | None = None, status: str | None = None, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Every prediction the key may see that matches, newest first, page after page."""
        cursor: str | None = None
        while True:
            page = self.list_predictions(model=model, status=status, limit=page_size, cursor=cursor)
            yield from page["results"]
            cursor = calls.cursor_of(page.get("next"))
            if cursor is None:
                return

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
        if input is not None:
            input = self._with_uploads(input)
        body = calls.stream_body(prediction_id, model, input, webhook, webhook_events)
        refusals, started = 0, self._clock.now()
        while not resume.done:
            try:
                with self._connect(resume, body) as source:
                    calls.check_stream(source, resume)
                    for sse in source.iter_sse():
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
                self._clock.sleep(pause)
                continue
            except httpx.TransportError as exc:
                if resume.prediction_id is None:
                    raise Unreachable(str(self._http.base_url), exc) from exc
                resume.dropped(str(exc) or type(exc).__name__)
            if not resume.done:
                self._clock.sleep(resume.backoff_s())

    def _connect(self, resume: Resume, body: dict[str, Any] | None) -> Any:
        if resume.prediction_id is None:
            return connect_sse(self._http, "POST", "/v1/predictions", json=body)
        return connect_sse(self._http, "GET", resume.path(), headers=resume.headers())

    # Files

    def upload(
        self, source: Upload, *, filename: str | None = None, content_type: str | None = None
    ) -> dict[str, Any]:
        """Store a file (a path, bytes or a binary file object) on the server: its record,
        whose `id` (or `urls.get`) a file input takes. The server tells its type from its
        bytes; `content_type` declares one, `filename` names it (default: the path's name)."""
        return calls.answer(self._send(calls.upload(source, filename, content_type)))

    def _with_uploads(self, input: dict[str, Any]) -> dict[str, Any]:
        paths = calls.local_files(input)
        if not paths:
            return input
        ids = {path: str(self.upload(path)["id"]) for path in paths}
        result: dict[str, Any] = calls.with_files(input, ids)
        return result

    # Models and deployments

    def list_models(self) -> dict[str, Any]:
        return self._call(Call("GET", "/v1/models"))

    def get_model(self, owner: str, name: str) -> dict[str, Any]:
        return self._call(Call("GET", f"/v1/models/{owner}/{name}"))

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
        return self._call(Call("POST", path, json=body, read_timeout_s=SETTLE_TIMEOUT_S))

    def rescan(self) -> dict[str, Any]:
        """Read the model repository again: {"added": [...], "removed": [...]}."""
        return self._call(Call("POST", "/v1/repository/rescan"))

    def list_environments(self, owner: str, name: str) -> dict[str, Any]:
        return self._call(Call("GET", f"/v1/models/{owner}/{name}/environments"))

    def assign_environment(
        self, owner: str, name: str, environment: str, version: int
    ) -> dict[str, Any]:
        path = f"/v1/models/{owner}/{name}/environments/{environment}"
        return self._call(Call("PUT", path, json={"version_number": version}))

    def get_version(self, owner: str, name: str, version: int) -> dict[str, Any]:
        return self._call(Call("GET", f"/v1/models/{owner}/{name}/versions/{version}"))

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
        # A stream is read once: a refused push is raised, for the caller to send again.
        call = Call(
            "POST",
            path,
            Idempotence.NEVER,
            headers=headers,
            body=lambda: nullcontext({"content": chunks()}),
        )
        return self._call(call)

    # Sending

    def _call(self, call: Call) -> dict[str, Any]:
        return calls.answer(self._send(call))

    def _send(self, call: Call) -> httpx.Response:
        """`call`'s answer (any status but the errors), sent again after a 429 or 503 as the
        retry policy allows; else its typed ApiError."""
        started = self._clock.now()
        attempt = 0
        while True:
            attempt += 1
            try:
                with call.options(self._http.timeout) as options:
                    response = self._http.request(call.method, call.path, **options)
            except httpx.TransportError as exc:
                raise Unreachable(str(self._http.base_url), exc) from exc
            if not response.is_error:
                return response
            error = error_for(response)
            pause = self._retry.after(error, call.idempotence, attempt, self._clock.now() - started)
            if pause is None:
                raise error
            self._clock.sleep(pause)
