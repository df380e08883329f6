"""The native API's calls as data, without I/O: what Client and AsyncClient send (method, path,
body, headers, whether it may be sent again) and how an answer is read. Only the sending differs
between the two clients."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import IO, Any

import httpx
from httpx_sse import EventSource

from foretell.client.errors import ApiError, BadRequest, WaitTimedOut, error_for
from foretell.client.events import Resume
from foretell.client.retry import Idempotence
from foretell.domain.prediction import PredictionStatus

Upload = Path | str | bytes | IO[bytes]  # what upload() takes: a path, bytes, a binary file
TERMINAL = frozenset(s.value for s in PredictionStatus if s.terminal)
# The server's max_wait_s by default: a longer Prefer: wait=N would be refused by most servers.
DEFAULT_MAX_WAIT_S = 60
POLL_S = 0.5  # wait()'s interval against a server that does not hold a GET (no Prefer: wait)
# A long poll's own read timeout: the server answers by its max_wait_s (60 s by default), and
# a bare `Prefer: wait` asks for exactly that, whatever it is configured to.
LONG_POLL_READ_S = 3600.0


@dataclass(frozen=True, slots=True)
class Call:
    """One request. `body` makes its content afresh for each try (a file opened again, and
    closed once the try is answered)."""

    method: str
    path: str
    idempotence: Idempotence = Idempotence.SAFE
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Callable[[], AbstractContextManager[dict[str, Any]]] | None = None
    read_timeout_s: float | None = None

    @contextmanager
    def options(self, timeout: httpx.Timeout) -> Iterator[dict[str, Any]]:
        """httpx.Client.request's keyword arguments for one try, while it is sent."""
        options: dict[str, Any] = {"headers": dict(self.headers)}
        if self.params is not None:
            options["params"] = {k: v for k, v in self.params.items() if v is not None}
        if self.json is not None:
            options["json"] = self.json
        if self.read_timeout_s is not None:
            options["timeout"] = httpx.Timeout(timeout.connect, read=self.read_timeout_s)
        if self.body is None:
            yield options
            return
        with self.body() as content:
            yield {**options, **content}


def answer(response: httpx.Response) -> dict[str, Any]:
    """A read response's JSON; the typed ApiError for an error answer."""
    if response.is_error:
        raise error_for(response)
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text}
    result: dict[str, Any] = body
    return result


def create(
    model: str,
    input: dict[str, Any],
    *,
    wait: int | bool | None = None,
    webhook: str | None = None,
    webhook_events: list[str] | None = None,
    validate_input: bool = False,
) -> Call:
    """POST /v1/predictions: sent again only after a refusal that created nothing."""
    headers = {}
    if wait:
        headers["Prefer"] = "wait" if wait is True else f"wait={wait}"
    if validate_input:
        headers["Validate-Input"] = "true"
    return Call(
        "POST",
        "/v1/predictions",
        Idempotence.REFUSED_ONLY,
        json=create_body(model, input, webhook, webhook_events),
        headers=headers,
        read_timeout_s=LONG_POLL_READ_S if wait else None,
    )


def get(prediction_id: str) -> Call:
    return Call("GET", f"/v1/predictions/{prediction_id}")


def cancel(prediction_id: str) -> Call:
    # Twice is as once: the second finds it canceled (or ended) and says so.
    return Call("POST", f"/v1/predictions/{prediction_id}/cancel")


def listing(model: str | None, status: str | None, limit: int | None, cursor: str | None) -> Call:
    """GET /v1/predictions, newest first; `cursor` is the previous page's `next` (its URL, or
    the cursor in it)."""
    if cursor is not None and "://" in cursor:
        cursor = cursor_of(cursor)
    params = {"model": model, "status": status, "limit": limit, "cursor": cursor}
    return Call("GET", "/v1/predictions", params=params)


def upload(source: Upload, filename: str | None, content_type: str | None) -> Call:
    """POST /v1/files as multipart: a path is opened (and read again on a retry), bytes sent as
    they are, a binary file object whole (the caller's to close)."""
    if isinstance(source, str | PurePath):
        path = Path(source)
        name = filename or path.name

        @contextmanager
        def opened() -> Iterator[dict[str, Any]]:
            with path.open("rb") as file:
                yield _part(name, file, content_type)

        return Call("POST", "/v1/files", Idempotence.REFUSED_ONLY, body=opened)
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return Call(
            "POST",
            "/v1/files",
            Idempotence.REFUSED_ONLY,
            body=lambda: nullcontext(_part(filename or "file", data, content_type)),
        )
    name = filename or Path(str(getattr(source, "name", "file"))).name
    # httpx sends a file object whole, from its start (seeking it there): one that cannot seek
    # is read once, and not sent again.
    again = Idempotence.REFUSED_ONLY if source.seekable() else Idempotence.NEVER
    return Call(
        "POST", "/v1/files", again, body=lambda: nullcontext(_part(name, source, content_type))
    )


def _part(name: str, content: Any, content_type: str | None) -> dict[str, Any]:
    part = (name, content, content_type) if content_type else (name, content)
    return {"files": {"file": part}}


def local_files(input: Any) -> list[Path]:
    """The local paths in an input (at any depth), each once: uploaded before it is sent."""
    found: list[Path] = []
    if isinstance(input, PurePath):
        found.append(Path(input))
    elif isinstance(input, dict):
        for value in input.values():
            found.extend(p for p in local_files(value) if p not in found)
    elif isinstance(input, list | tuple):
        for value in input:
            found.extend(p for p in local_files(value) if p not in found)
    return found


def with_files(input: Any, ids: Mapping[Path, str]) -> Any:
    """`input` with each local path replaced by its uploaded file's id."""
    if isinstance(input, PurePath):
        return ids[Path(input)]
    if isinstance(input, dict):
        return {key: with_files(value, ids) for key, value in input.items()}
    if isinstance(input, list | tuple):
        return [with_files(value, ids) for value in input]
    return input


def create_body(
    model: str, input: dict[str, Any], webhook: str | None, webhook_events: list[str] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": input}
    if webhook is not None:
        body["webhook"] = webhook
        if webhook_events:
            body["webhook_events_filter"] = webhook_events
    return body


def prediction_id(prediction: str | Mapping[str, Any]) -> str:
    return prediction if isinstance(prediction, str) else str(prediction["id"])


class Waiting:
    """wait()'s course without I/O: long polls (GET with `Prefer: wait=N`, N what is left of the
    timeout up to 60 s; with no timeout, or where the server's max_wait_s is shorter and it
    refused N, a bare `Prefer: wait` asks for the server's own longest), or polls every `poll`
    seconds where the server did not wait (it answered without Preference-Applied)."""

    def __init__(self, prediction: str, timeout: float | None, poll: float, now: float) -> None:
        self.prediction = prediction
        self.timeout = timeout
        self.deadline = None if timeout is None else now + timeout
        self.poll = poll
        self.mode = "exact" if timeout is not None else "bare"  # then "bare", then "poll"

    def call(self, now: float) -> Call:
        base = get(self.prediction)
        if self.mode == "poll":
            return base
        prefer = "wait"
        if self.mode == "exact" and self.deadline is not None:
            prefer = f"wait={max(1, min(math.ceil(self.deadline - now), DEFAULT_MAX_WAIT_S))}"
        return Call(
            base.method, base.path, headers={"Prefer": prefer}, read_timeout_s=LONG_POLL_READ_S
        )

    def refused(self, error: ApiError) -> bool:
        """Whether `error` refused only the way it waited (then it asks again another way)."""
        if not isinstance(error, BadRequest) or "Prefer" not in str(error.detail):
            return False
        if self.mode == "poll":
            return False
        self.mode = "bare" if self.mode == "exact" else "poll"
        return True

    def pause(self, record: dict[str, Any], waited: bool, now: float) -> float | None:
        """Seconds before asking again (None: it has ended); WaitTimedOut past the timeout."""
        if record.get("status") in TERMINAL:
            return None
        if self.deadline is not None and now >= self.deadline:
            raise WaitTimedOut(record, self.timeout or 0.0)
        if waited:  # the server held the answer as long as it would: ask again at once
            return 0.0
        left = self.poll if self.deadline is None else min(self.poll, self.deadline - now)
        return max(0.0, left)


def stream_body(
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
    return {**create_body(model, input, webhook, webhook_events), "stream": True}


def check_stream(source: EventSource, resume: Resume) -> None:
    """An error answer raises its ApiError (its body already read); a new prediction's id is
    learned from the stream's headers, for resuming it."""
    response = source.response
    if response.is_error:
        if not response.is_stream_consumed:
            response.read()
        answer(response)
    if resume.prediction_id is None:
        resume.prediction_id = response.headers.get("x-prediction-id")


def cursor_of(next_url: str | None) -> str | None:
    """The cursor of a page's `next` URL (None on the last page)."""
    return httpx.URL(next_url).params.get("cursor") if next_url else None


def first_wait(timeout: float | None) -> int | bool:
    """How long predict()'s create asks the server to hold it: all of a short timeout, else
    the server's longest (a bare Prefer: wait)."""
    if timeout is None or timeout >= DEFAULT_MAX_WAIT_S:
        return True
    return max(1, math.ceil(timeout))


def wait_refused(error: BadRequest, wait: int | bool) -> bool:
    """Whether a create was refused only for its Prefer: wait=N (over the server's max_wait_s:
    refused before anything was made, so sent again with a bare Prefer: wait)."""
    return wait is not True and "Prefer" in str(error.detail)
