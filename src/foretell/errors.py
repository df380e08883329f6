"""The domain exception tree; every layer raises these, only `api/` knows their HTTP status.

ForetellError                    code
├── InvalidRequest               invalid_request      (a malformed header, body or parameter)
│   ├── InvalidPreference        invalid_preference   (the Prefer header)
│   ├── PayloadTooLarge          payload_too_large    (a body over the configured limit)
│   │   ├── DecodedTooLarge      payload_too_large    (… once decompressed: a zip bomb)
│   │   ├── FileTooLarge         file_too_large       (one file over max_file_bytes)
│   │   └── UnpackedTooLarge     payload_too_large    (a pushed archive unpacks past its cap)
│   ├── UnsupportedMediaType     unsupported_media_type (a body of a type the route does not take)
│   ├── FileKindMismatch         file_kind_mismatch   (a declared image, audio, PDF it is not)
│   ├── RangeNotSatisfiable      range_not_satisfiable (a Range past a file's end)
│   ├── UnsupportedEncoding      unsupported_encoding (a Content-Encoding foretell cannot decode)
│   ├── NestingTooDeep           nesting_too_deep     (a JSON body nested past the limit)
│   ├── HeaderTooLong            header_too_long      (a header value past what foretell parses)
│   └── HeadTooLarge             head_too_large       (request line and headers past the cap)
├── ReadTimedOut                 read_timed_out       (a client stopped sending its request)
├── InvalidInput                 invalid_input        (input does not match the model's schema)
├── Unauthenticated              unauthenticated      (no key, a malformed header, a bad key)
├── Forbidden                    forbidden            (a key without the scope the route needs)
├── RateLimited                  rate_limited         (a key over its request rate; retry later)
├── TooManyUnfinished            too_many_unfinished  (an owner's async predictions at the limit)
├── NotFound                     not_found
│   ├── ModelNotFound            model_not_found
│   ├── VersionNotFound          version_not_found
│   ├── DeploymentNotFound       deployment_not_found
│   ├── EnvironmentNotFound      environment_not_found
│   ├── PredictionNotFound       prediction_not_found
│   ├── KeyNotFound              key_not_found
│   └── FileNotFound             file_not_found
├── FileGone                     file_gone            (a stored file removed by retention)
├── StorageFull                  storage_full         (stored files at their disk quota)
├── PredictionFinished           prediction_finished  (cancel of a terminal prediction)
├── NoWebhookEvent               no_webhook_event     (redeliver with nothing to send)
├── ModelNotReady                model_not_ready      (still deploying; try again)
├── ServerStopping               server_stopping      (the server is stopping; try again)
├── ManifestError                manifest_invalid     (a model folder that cannot be served)
├── ArchiveInvalid               archive_invalid      (a pushed archive's member foretell refuses)
├── ModelLoadFailed              model_load_failed    (setup raised or the artifact is unusable)
├── Overloaded                   overloaded           (queue full; retry later)
├── BodiesInFlightFull           bodies_in_flight_full (request bodies at their memory cap)
├── ConnectionsFull              connections_full     (connections or requests at the server's cap)
├── WorkerCrashed                worker_crashed       (a replica process died mid-prediction)
├── StoreUnavailable             store_unavailable    (the database is down, restarting or locked)
└── RecordNotSaved               record_not_saved     (a finished record could not be stored)
"""

from __future__ import annotations

import math
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ECHO_CHARS = 100


def echo(text: str, limit: int = ECHO_CHARS) -> str:
    """Caller-sent `text` as an error message repeats it: whole if short, else its first `limit`
    characters and its length, so that no error grows with what a client chose to send."""
    return text if len(text) <= limit else f"{text[:limit]}…({len(text)} characters)"


class ForetellError(Exception):
    """Base of every error foretell raises on purpose; `code` is stable and machine-readable."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ForetellError):
    code = "invalid_request"


class InvalidPreference(InvalidRequest):
    code = "invalid_preference"


class PayloadTooLarge(InvalidRequest):
    code = "payload_too_large"

    def __init__(self, size: int, limit: int, setting: str | None = None) -> None:
        named = f" ({setting})" if setting else ""
        super().__init__(f"request body of {size} bytes exceeds the limit of {limit} bytes{named}")
        self.size = size
        self.limit = limit


class DecodedTooLarge(PayloadTooLarge):
    """A compressed body whose decompressed size passes the limit; decompression stops there."""

    def __init__(self, encoding: str, compressed: int, limit: int) -> None:
        InvalidRequest.__init__(
            self,
            f"request body of {compressed} bytes ({encoding}) decompresses to more than the "
            f"limit of {limit} bytes",
        )
        self.size = limit + 1  # as far as it was decompressed
        self.limit = limit
        self.encoding = encoding


class FileTooLarge(PayloadTooLarge):
    """One file (uploaded, fetched or made) over max_file_bytes; nothing of it was kept."""

    code = "file_too_large"

    def __init__(self, name: str, size: int, limit: int, setting: str = "max_file_bytes") -> None:
        InvalidRequest.__init__(
            self,
            f"file '{echo(name)}' of {size} bytes or more exceeds the limit of {limit} bytes "
            f"({setting})",
        )
        self.size = size
        self.limit = limit
        self.name = name


class UnpackedTooLarge(PayloadTooLarge):
    """A pushed model archive whose members together pass the unpacked cap; nothing of it is
    kept. `member` is the one that took it past the cap (None: the archive's own headers)."""

    def __init__(self, member: str | None, size: int, limit: int, setting: str) -> None:
        where = f" at member '{echo(member)}'" if member is not None else ""
        InvalidRequest.__init__(
            self,
            f"the archive unpacks to {size} bytes or more{where}, past the limit of {limit} "
            f"bytes ({setting}); nothing was written",
        )
        self.size = size
        self.limit = limit
        self.member = member


class UnsupportedMediaType(InvalidRequest):
    """A body whose Content-Type the route does not take; `accepted` lists those it does."""

    code = "unsupported_media_type"

    def __init__(self, content_type: str, accepted: Sequence[str]) -> None:
        super().__init__(
            f"Content-Type '{echo(content_type)}' is not accepted here; send one of "
            + ", ".join(accepted)
        )
        self.content_type = content_type
        self.accepted = tuple(accepted)


class FileKindMismatch(InvalidRequest):
    """A file whose declared type (an image, audio, video or PDF) its bytes are not."""

    code = "file_kind_mismatch"

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"file '{echo(name)}': {problem}")
        self.name = name


class RangeNotSatisfiable(InvalidRequest):
    """A download's Range that starts past the file's end (or asks for none of it)."""

    code = "range_not_satisfiable"

    def __init__(self, header: str, size: int) -> None:
        super().__init__(
            f"Range '{echo(header)}' asks for none of the file's {size} bytes; "
            f"ask for bytes=0-{max(size - 1, 0)} or less"
        )
        self.size = size


class UnsupportedEncoding(InvalidRequest):
    """A request body in a Content-Encoding foretell does not decode."""

    code = "unsupported_encoding"

    def __init__(self, encoding: str, supported: Sequence[str]) -> None:
        also = " or as " + " or ".join(supported) if supported else " (an upload is stored as sent)"
        super().__init__(
            f"Content-Encoding '{echo(encoding)}' is not supported; send the body uncompressed"
            + also
        )
        self.encoding = encoding
        self.supported = tuple(supported)


class NestingTooDeep(InvalidRequest):
    """A JSON body whose arrays and objects nest past the configured limit: refused before
    anything is stored, since no record deeper than orjson writes could ever be shown."""

    code = "nesting_too_deep"

    def __init__(self, limit: int, where: str) -> None:
        super().__init__(
            f"request body nests deeper than {limit} levels of arrays and objects (at {where}); "
            "send it less deeply nested"
        )
        self.limit = limit
        self.where = where


class HeaderTooLong(InvalidRequest):
    """A header value longer than foretell reads: refused before it is parsed, since parsing
    (Prefer's list of preferences) costs the event loop time in proportion to its length."""

    code = "header_too_long"

    def __init__(self, header: str, size: int, limit: int) -> None:
        super().__init__(
            f"header {header} is {size} characters long, more than the limit of {limit}"
        )
        self.header = header
        self.size = size
        self.limit = limit


class InvalidStreamPosition(InvalidRequest):
    """A Last-Event-ID that is no position of this prediction's stream (see service.stream)."""

    code = "invalid_stream_position"

    def __init__(self, value: str, problem: str) -> None:
        super().__init__(
            f"header Last-Event-ID: '{echo(value)}' {problem}; send the id of the last event "
            "received, as the stream gave it (output-logs-status, e.g. '12-340-2')"
        )
        self.value = value


class HeadTooLarge(InvalidRequest):
    """A request line and headers (or a chunked body's trailers) past the server's cap
    (`max_head_bytes`), counted as they arrive: refused before authentication or a route.
    Unfinished: `size` bytes arrived and the headers had not ended."""

    code = "head_too_large"

    def __init__(self, size: int, limit: int, *, finished: bool = True) -> None:
        super().__init__(
            f"request line and headers of {size} bytes exceed the limit of {limit} bytes "
            "(max_head_bytes)"
            if finished
            else f"request headers (or trailers) exceed the limit of {limit} bytes "
            f"(max_head_bytes): {size} bytes arrived before their end"
        )
        self.size = size
        self.limit = limit


class ReadTimedOut(ForetellError):
    """A client stopped sending its request: its headers did not all arrive in `timeout_s`, or
    its body sent nothing for `timeout_s`. The connection is closed after the answer."""

    code = "read_timed_out"

    def __init__(self, part: str, timeout_s: float, setting: str) -> None:
        waited = "did not all arrive within" if part == "headers" else "sent nothing for"
        super().__init__(
            f"the request's {part} {waited} {timeout_s:g} s, the server's limit ({setting}); "
            "the connection is closed"
        )
        self.part = part
        self.timeout_s = timeout_s
        self.setting = setting


class InvalidInput(ForetellError):
    """Input rejected by the schema; `errors` use pydantic's shape: loc, msg, type, input, ctx."""

    code = "invalid_input"

    def __init__(self, errors: Sequence[dict[str, Any]]) -> None:
        summary = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in errors
        )
        super().__init__(f"invalid input: {summary}")
        self.errors = list(errors)


class Unauthenticated(ForetellError):
    """No usable credentials. The message never repeats the key: it may be a real one."""

    code = "unauthenticated"


class Forbidden(ForetellError):
    code = "forbidden"

    def __init__(self, scope: str, needed: str, action: str) -> None:
        super().__init__(
            f"this API key's scope is '{scope}'; {action} needs a key with scope '{needed}'"
        )
        self.scope = scope
        self.needed = needed


class RateLimited(ForetellError):
    code = "rate_limited"

    def __init__(self, key_id: str, rate_per_s: float, burst: int, retry_after_s: float):
        super().__init__(
            f"API key {key_id} is over its rate limit of {rate_per_s:g} requests/s "
            f"(bursts of {burst}); retry in {retry_after_s:.2f} s"
        )
        self.retry_after_s = max(1, math.ceil(retry_after_s))


class TooManyUnfinished(ForetellError):
    code = "too_many_unfinished"

    def __init__(self, owner: str, limit: int, retry_after_s: int = 1) -> None:
        super().__init__(
            f"owner '{owner}' already has {limit} asynchronous predictions unfinished, the "
            "limit; wait for some to finish (or cancel them) and retry"
        )
        self.owner = owner
        self.limit = limit
        self.retry_after_s = retry_after_s


class NotFound(ForetellError):
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(f"model '{echo(model)}' not found")
        self.model = model


class VersionNotFound(NotFound):
    code = "version_not_found"

    def __init__(self, model: str, version: int, available: Sequence[int]) -> None:
        listed = ", ".join(str(v) for v in available) or "none"
        super().__init__(
            f"model '{echo(model)}' has no version {version}; versions that exist: {listed}"
        )
        self.model = model
        self.version = version
        self.available = list(available)


class DeploymentNotFound(NotFound):
    code = "deployment_not_found"

    def __init__(self, deployment_id: str) -> None:
        super().__init__(f"deployment '{echo(deployment_id)}' not found")
        self.deployment_id = deployment_id


class EnvironmentNotFound(NotFound):
    code = "environment_not_found"

    def __init__(
        self, model: str, environment: str, known: Sequence[str], reason: str | None = None
    ) -> None:
        super().__init__(
            f"model '{echo(model)}' environment '{echo(environment)}' cannot serve: {reason}"
            if reason
            else f"model '{echo(model)}' has no environment '{echo(environment)}'; its "
            f"environments: {', '.join(known)}"
        )
        self.model = model
        self.environment = environment


class PredictionNotFound(NotFound):
    code = "prediction_not_found"

    def __init__(self, prediction_id: str) -> None:
        super().__init__(f"prediction '{echo(prediction_id)}' not found")
        self.prediction_id = prediction_id


class KeyNotFound(NotFound):
    code = "key_not_found"

    def __init__(self, key: str) -> None:
        super().__init__(f"no API key with id or prefix '{echo(key)}'")
        self.key = key


class FileNotFound(NotFound):
    code = "file_not_found"

    def __init__(self, file_id: str) -> None:
        super().__init__(f"file '{echo(file_id)}' not found")
        self.file_id = file_id


class FileGone(ForetellError):
    """A stored file whose bytes were removed (its retention passed, or it was deleted)."""

    code = "file_gone"

    def __init__(self, file_id: str, removed_at: str, reason: str) -> None:
        super().__init__(f"file '{echo(file_id)}' was removed at {removed_at}: {reason}")
        self.file_id = file_id
        self.removed_at = removed_at


class StorageFull(ForetellError):
    """Storing a file would pass the quota of all stored files: nothing of it was kept."""

    code = "storage_full"

    def __init__(self, size: int, used: int, limit: int, retry_after_s: int = 60) -> None:
        super().__init__(
            f"storing {size} bytes would pass the stored files' quota: {used} of {limit} bytes "
            f"are in use (max_files_bytes); retry once older files expire or are deleted"
        )
        self.size = size
        self.used = used
        self.limit = limit
        self.retry_after_s = retry_after_s


class PredictionFinished(ForetellError):
    code = "prediction_finished"

    def __init__(self, prediction_id: str, status: str) -> None:
        super().__init__(
            f"prediction '{prediction_id}' is already {status} and can no longer be canceled"
        )
        self.prediction_id = prediction_id
        self.status = status


class NoWebhookEvent(ForetellError):
    code = "no_webhook_event"

    def __init__(self, prediction_id: str, reason: str) -> None:
        super().__init__(
            f"prediction '{prediction_id}' has no webhook event to redeliver: {reason}"
        )
        self.prediction_id = prediction_id
        self.reason = reason


class ModelNotReady(ForetellError):
    code = "model_not_ready"

    def __init__(self, model: str, status: str, retry_after_s: int = 5) -> None:
        super().__init__(f"model '{model}' is not ready: deployment is {status}")
        self.model = model
        self.status = status
        self.retry_after_s = retry_after_s


class ServerStopping(ForetellError):
    """The server is stopping: it takes no new prediction, and one it had not finished when its
    grace ran out is back to pending (to run at the next start) or, unrecorded, stopped."""

    code = "server_stopping"

    def __init__(
        self, retry_after_s: int, prediction_id: str | None = None, *, kept: bool = True
    ) -> None:
        if prediction_id is None:
            message = "the server is stopping and takes no new predictions"
        elif kept:
            message = (
                f"the server is stopping before prediction {prediction_id} finished; it is back "
                f"to pending and runs when the server starts again (GET /v1/predictions/"
                f"{prediction_id} for its outcome)"
            )
        else:
            message = (
                f"the server is stopping before prediction {prediction_id} finished; it was "
                "stopped and not kept"
            )
        super().__init__(f"{message}; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s
        self.prediction_id = prediction_id if kept else None


class ManifestError(ForetellError):
    """A model folder that cannot be served: names the file, the field and the reason."""

    code = "manifest_invalid"

    def __init__(self, path: Path, field: str | None, reason: str) -> None:
        where = f"{path}: field '{field}'" if field else str(path)
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.field = field
        self.reason = reason


class ArchiveInvalid(ForetellError):
    """A pushed model archive refused before anything of it was written: names the member and
    what is wrong with it (a link, a path out of the folder, too many members, …)."""

    code = "archive_invalid"

    def __init__(self, member: str | None, problem: str) -> None:
        super().__init__(
            f"archive member '{echo(member)}': {problem}"
            if member is not None
            else f"archive: {problem}"
        )
        self.member = member
        self.problem = problem


class ModelLoadFailed(ForetellError):
    code = "model_load_failed"

    def __init__(self, model: str, reason: str, traceback: str = "") -> None:
        super().__init__(f"model '{model}' failed to load: {reason}")
        self.model = model
        self.reason = reason
        self.traceback = traceback  # of the model's own setup code, for the deployment's logs


class Overloaded(ForetellError):
    code = "overloaded"

    def __init__(self, model: str, limit: int, retry_after_s: int = 1) -> None:
        super().__init__(
            f"model '{model}' is overloaded: {limit} predictions already queued; retry later"
        )
        self.model = model
        self.limit = limit
        self.retry_after_s = retry_after_s


class BodiesInFlightFull(ForetellError):
    """Request bodies being read or held by unfinished requests are at the server's cap."""

    code = "bodies_in_flight_full"

    def __init__(self, size: int, in_flight: int, limit: int, retry_after_s: int = 1) -> None:
        super().__init__(
            f"this request's body of {size} bytes would take the request bodies in flight past "
            f"the server's limit of {limit} bytes ({in_flight} bytes held now, "
            f"max_body_bytes_in_flight); retry in {retry_after_s} s"
        )
        self.size = size
        self.in_flight = in_flight
        self.limit = limit
        self.retry_after_s = retry_after_s


class ConnectionsFull(ForetellError):
    """The server holds as many connections or unanswered requests as it is allowed
    (`max_connections`): a new request is refused until some are answered or closed."""

    code = "connections_full"

    def __init__(self, limit: int, retry_after_s: int = 1) -> None:
        super().__init__(
            f"the server is at its limit of {limit} open connections or requests in progress "
            f"(max_connections); retry in {retry_after_s} s"
        )
        self.limit = limit
        self.retry_after_s = retry_after_s


class WorkerCrashed(ForetellError):
    code = "worker_crashed"

    def __init__(self, model: str, exitcode: int | None, reason: str | None = None) -> None:
        super().__init__(reason or f"the replica of model '{model}' {_exit(exitcode)}")
        self.model = model
        self.exitcode = exitcode


class StoreUnavailable(ForetellError):
    """The database did not answer: down, restarting, unreachable, refusing connections, or
    (SQLite) write-locked by another process past its busy_timeout. Nothing the request asked
    for was confirmed stored; retry after `retry_after_s`. (A connection lost during COMMIT
    leaves its outcome unknown: the write may have landed, and a retried create makes another.)
    `store` is the database's URL without its password."""

    code = "store_unavailable"

    def __init__(self, store: str, cause: str, retry_after_s: int = 2) -> None:
        super().__init__(f"the store {store} is unavailable ({cause}); retry in {retry_after_s} s")
        self.store = store
        self.cause = cause
        self.retry_after_s = retry_after_s


class RecordNotSaved(ForetellError):
    """A prediction ended, but its record could not be committed, however often it was tried:
    its outcome is not acknowledged, since a crash could take it back."""

    code = "record_not_saved"

    def __init__(self, prediction_id: str, status: str, tries: int, reason: str) -> None:
        super().__init__(
            f"prediction '{prediction_id}' {status}, but its record could not be stored "
            f"({tries} tries; last error: {reason}); the outcome was not kept"
        )
        self.prediction_id = prediction_id
        self.status = status
        self.reason = reason


def _exit(exitcode: int | None) -> str:
    """How a replica ended: its exit code, or the signal by name with a SIGKILL's usual cause."""
    if exitcode is None or exitcode >= 0:
        return f"exited (code {exitcode}) mid-prediction"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = f"signal {-exitcode}"
    if name == "SIGKILL":
        return (
            "was killed by SIGKILL mid-prediction, often by the out-of-memory killer: "
            "give it more memory or a smaller max_batch_size"
        )
    return f"was killed by {name} mid-prediction"
