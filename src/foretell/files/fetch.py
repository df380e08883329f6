"""An input file fetched from its http(s) URL by the server: through the outbound guard
(FORETELL_FETCH_ALLOW_PRIVATE for private addresses), connected to the address it checked,
redirects followed by hand with every hop checked again, its size and whole time capped."""

from __future__ import annotations

import asyncio
import ipaddress
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit

from foretell.config import Settings
from foretell.errors import echo
from foretell.files.refusal import Refused, too_large
from foretell.outbound.addresses import AddressRefused, Guard, url_problem

if TYPE_CHECKING:
    import httpx

SETTING = "FORETELL_FETCH_ALLOW_PRIVATE"
MAX_REDIRECTS = 5
MAX_CONNECTIONS = 32
USER_AGENT = "foretell-fetch"
DEFAULT_NAME = "input"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# The Content-Encodings decoded here, by zlib's window bits; decoded by hand to the size cap,
# since httpx inflates each chunk whole (64 KB of a gzip bomb is 64 MB in memory).
_ENCODINGS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


@dataclass(frozen=True, slots=True)
class Fetched:
    name: str  # the last segment of the final URL's path, else DEFAULT_NAME
    content_type: str | None  # as the answer declared it, without parameters
    data: bytes


class Fetcher:
    """Fetches URLs for one server's settings; its HTTP client opens on the first fetch."""

    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.guard = Guard(allow_private=settings.fetch_allow_private, setting=SETTING)
        self._limit = settings.max_file_bytes
        self._timeout_s = settings.fetch_timeout_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def fetch(self, url: str) -> Fetched:
        """The file at `url`; Refused naming why not."""
        import httpx  # lazy: a server that fetches nothing never loads it (cold start)

        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._follow(url)
        except (TimeoutError, httpx.TimeoutException):
            raise Refused(
                "file_fetch_timeout",
                f"the URL gave no whole answer within {self._timeout_s:g} s (fetch_timeout_s)",
            ) from None
        except httpx.HTTPError as exc:
            raise Refused("file_fetch_failed", f"the URL could not be fetched: {exc}") from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _follow(self, url: str) -> Fetched:
        client = self._http()
        for hop in range(MAX_REDIRECTS + 1):
            _check(url, hop)
            try:
                async with client.stream("GET", url) as response:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        url = urljoin(url, location)
                        continue
                    if not 200 <= response.status_code < 300:
                        raise Refused(
                            "file_fetch_failed",
                            f"{_where(url, hop)}answered {response.status_code} "
                            f"{response.reason_phrase}".rstrip(),
                        )
                    return await self._body(url, response)
            except AddressRefused as refused:  # at connect time: nothing was sent there
                again = AddressRefused(
                    echo(url), refused.where, always=refused.always, setting=refused.setting
                )
                lead = "" if hop == 0 else "a redirect led to "
                raise Refused("file_url_refused", lead + again.message) from None
        raise Refused(
            "file_fetch_failed", f"more than {MAX_REDIRECTS} redirects; the last to '{echo(url)}'"
        )

    async def _body(self, url: str, response: httpx.Response) -> Fetched:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._limit:
            raise too_large(int(declared), self._limit, more=False)
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity", *_ENCODINGS):
            raise Refused(
                "file_fetch_failed",
                f"the URL answered in Content-Encoding '{echo(encoding)}'; only gzip and "
                "deflate are decoded",
            )
        inflate = zlib.decompressobj(_ENCODINGS[encoding]) if encoding in _ENCODINGS else None
        data = bytearray()
        try:
            async for chunk in response.aiter_raw():
                if inflate is not None:  # never more than one byte past the cap
                    chunk = inflate.decompress(chunk, self._limit + 1 - len(data))
                data += chunk
                if len(data) > self._limit:
                    raise too_large(len(data), self._limit, more=True)
            if inflate is not None:  # all input was taken (else the cap was passed): no more
                data += inflate.flush()
                if len(data) > self._limit:
                    raise too_large(len(data), self._limit, more=True)
        except zlib.error as exc:
            raise Refused(
                "file_fetch_failed", f"the URL's {encoding} body cannot be decoded: {exc}"
            ) from None
        kind = response.headers.get("content-type", "").split(";")[0].strip() or None
        return Fetched(name_from_url(url), kind, bytes(data))

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            from foretell.outbound.transport import PinnedTransport

            transport = self._transport or PinnedTransport(
                self.guard, max_connections=MAX_CONNECTIONS
            )
            self._client = httpx.AsyncClient(
                transport=transport,
                follow_redirects=False,  # each hop is checked here first
                timeout=self._timeout_s,
                headers={"user-agent": USER_AGENT, "accept-encoding": "gzip, deflate"},
                trust_env=False,
            )
        return self._client


def precheck(url: str, guard: Guard) -> Refused | None:
    """Why `url` can never be fetched, known without a lookup (its form; an address it names
    itself that the guard refuses), or None: a name is resolved and checked when fetched."""
    try:
        _check(url, 0)
        host = urlsplit(url).hostname or ""
        address = ipaddress.ip_address(host)
    except Refused as failed:
        return failed
    except ValueError:  # a name, not an address
        return None
    try:
        guard.check(echo(url), host, address)
    except AddressRefused as refused:
        return Refused("file_url_refused", refused.message)
    return None


def name_from_url(url: str) -> str:
    """The file name a URL's path ends in, else DEFAULT_NAME."""
    last = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    if not last or last in (".", "..") or "\\" in last or "/" in last:
        return DEFAULT_NAME
    return last


def _check(url: str, hop: int) -> None:
    """Refuse a URL (the caller's, or a redirect's) no fetch may use."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise Refused("file_url_refused", f"{_where(url, hop)}is no URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise Refused("file_url_refused", f"{_where(url, hop)}is not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise Refused("file_url_refused", f"{_where(url, hop)}carries a user name or password")
    problem = url_problem(url)
    if problem is not None:
        raise Refused("file_url_refused", f"{_where(url, hop)}cannot be fetched: {problem}")


def _where(url: str, hop: int) -> str:
    return "the URL " if hop == 0 else f"a redirect to '{echo(url)}' "
