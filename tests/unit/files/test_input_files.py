"""A file input's reference resolved to its bytes: data: URIs decoded, the caller's stored files
read, URLs fetched from a real loopback server through the outbound guard; every failure a 422
naming the field and the cause, and a refused target never connected to."""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpcore
import pytest
from PIL import Image

from _site import Route, Site
from foretell.config import Settings
from foretell.domain.access import Principal, Scope
from foretell.errors import InvalidInput
from foretell.files import FileService
from foretell.files.blobs import LocalBlobs
from foretell.files.fetch import SETTING
from foretell.files.inputs import InputFiles, Resolved
from foretell.manifest.file_fields import FileFields
from foretell.manifest.schema import InputValidator
from foretell.outbound.addresses import Guard
from foretell.outbound.transport import PinnedTransport
from foretell.store import PredictionStore

T = TypeVar("T")
ACME = Principal(owner="acme", scope=Scope.PREDICT)
OTHER = Principal(owner="other", scope=Scope.PREDICT)
FILE = {"type": "string", "format": "uri"}
SCHEMA = {
    "type": "object",
    "properties": {"image": FILE, "more": {"type": "array", "items": FILE}},
}
VALIDATOR = InputValidator(SCHEMA)
FIELDS: FileFields = VALIDATOR.files  # type: ignore[assignment]


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, "PNG")
    return buffer.getvalue()


PNG = png()


class Counting(httpcore.AnyIOBackend):
    """The network backend that connects: records every address it was asked to reach."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, **options: Any) -> Any:
        self.connects.append((host, port))
        return await super().connect_tcp(host, port, **options)


def run(
    tmp_path: Path,
    scenario: Callable[[InputFiles, FileService], Awaitable[T]],
    backend: Counting | None = None,
    **settings: Any,
) -> T:
    async def go() -> T:
        options = Settings(data_dir=tmp_path / "data", port=8123, **settings)
        store = await PredictionStore.open(f"sqlite:///{tmp_path / 'data' / 'foretell.db'}")
        files = FileService(store.files, LocalBlobs(tmp_path / "blobs"), options)
        guard = Guard(allow_private=options.fetch_allow_private, setting=SETTING)
        transport = PinnedTransport(guard, max_connections=4, backend=backend or Counting())
        inputs = InputFiles(files, options, transport=transport)
        try:
            return await scenario(inputs, files)
        finally:
            await inputs.close()
            await files.close()
            await store.close()

    return asyncio.run(go())


def resolve(tmp_path: Path, data: dict[str, Any], **settings: Any) -> Resolved:
    async def scenario(inputs: InputFiles, _: FileService) -> Resolved:
        return await inputs.resolve(FIELDS, VALIDATOR.validate(data), ACME)

    return run(tmp_path, scenario, **settings)


def refused(tmp_path: Path, data: dict[str, Any], **settings: Any) -> list[dict[str, Any]]:
    with pytest.raises(InvalidInput) as caught:
        resolve(tmp_path, data, **settings)
    return caught.value.errors


def test_a_base64_data_uri_is_decoded_and_its_type_read_from_the_bytes(tmp_path: Path) -> None:
    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    out = resolve(tmp_path, {"image": uri, "more": ["data:,hello%20there"]})
    image, text = out.input["image"], out.input["more"][0]
    assert (image.data, image.content_type, image.name) == (PNG, "image/png", "input.png")
    assert (text.data, text.content_type) == (b"hello there", "application/octet-stream")
    assert out.logs == [
        f"[foretell] input image: decoded a data: URI ({len(PNG)} bytes, image/png)",
        "[foretell] input more.0: decoded a data: URI (11 bytes, application/octet-stream)",
    ]


def test_bad_base64_is_named(tmp_path: Path) -> None:
    (error,) = refused(tmp_path, {"image": "data:image/png;base64,iVBOR*w0"})
    assert error["loc"] == ["input", "image"]
    assert error["type"] == "data_uri_invalid"
    assert error["msg"].startswith("the data: URI's base64 data cannot be decoded")


def test_a_data_uri_over_the_size_cap_is_refused_naming_the_limit(tmp_path: Path) -> None:
    uri = "data:;base64," + base64.b64encode(b"x" * 2000).decode()
    (error,) = refused(tmp_path, {"image": uri}, max_file_bytes=1000)
    assert error["type"] == "file_too_large"
    assert "more than the limit of 1,000 bytes (max_file_bytes)" in error["msg"]


def test_a_declared_image_that_is_not_one_is_the_callers_error(tmp_path: Path) -> None:
    (error,) = refused(tmp_path, {"image": "data:image/png,not%20an%20image"})
    assert error["type"] == "file_kind_mismatch"
    assert error["msg"].startswith("declared image/png, but the bytes are not an image")


def test_a_stored_file_is_read_by_id_or_url_and_another_owner_is_told_it_is_missing(
    tmp_path: Path,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield PNG

    async def scenario(inputs: InputFiles, files: FileService) -> Any:
        stored = await files.upload("acme", "digit.png", "image/png", chunks())
        data = VALIDATOR.validate({"image": stored.id, "more": [files.url(stored.id)]})
        mine = await inputs.resolve(FIELDS, data, ACME)
        errors = []
        for who, value in ((OTHER, stored.id), (ACME, "file_" + "0" * 32)):
            with pytest.raises(InvalidInput) as caught:
                await inputs.resolve(FIELDS, VALIDATOR.validate({"image": value}), who)
            errors.append(caught.value.errors[0])
        return stored, mine, errors

    stored, mine, (theirs, missing) = run(tmp_path, scenario)
    assert mine.input["image"].data == PNG
    assert mine.input["more"][0].name == "digit.png"
    assert mine.logs[0].startswith(f"[foretell] input image: read uploaded file {stored.id} (")
    assert theirs["type"] == missing["type"] == "file_not_found"
    assert theirs["msg"] == f"file '{stored.id}' not found"
    assert theirs["loc"] == ["input", "image"]


def test_a_url_on_loopback_is_fetched_where_the_server_allows_it(tmp_path: Path) -> None:
    routes: dict[str, Route] = {"/digit.png": (200, {"content-type": "image/png"}, PNG)}
    with Site.running(routes) as site:
        out = resolve(tmp_path, {"image": site.url("/digit.png")}, fetch_allow_private=True)
    image = out.input["image"]
    assert (image.name, image.content_type, image.data) == ("digit.png", "image/png", PNG)
    (log,) = out.logs
    url = site.url("/digit.png")
    said = f"[foretell] input image: fetched {url} ({len(PNG)} bytes, image/png) in "
    assert log.startswith(said)
    assert log.endswith(" ms")


def test_loopback_is_refused_without_the_setting_and_never_connected_to(tmp_path: Path) -> None:
    routes: dict[str, Route] = {"/digit.png": (200, {}, PNG)}
    with Site.running(routes) as site:
        (error,) = refused(tmp_path, {"image": site.url("/digit.png")})
        assert site.accepted == 0
    assert (error["loc"], error["type"]) == (["input", "image"], "file_url_refused")
    assert error["msg"].endswith(
        "a private or loopback address; the server connects there only when started with "
        "FORETELL_FETCH_ALLOW_PRIVATE=true"
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("/etc/hostname", "file_reference_invalid"),
        ("file:///etc/passwd", "file_reference_invalid"),
        ("http://169.254.169.254/latest/meta-data/", "file_url_refused"),
        ("http://[::ffff:169.254.169.254]/", "file_url_refused"),
    ],
)
def test_server_files_and_metadata_are_refused_and_nothing_is_connected_to(
    tmp_path: Path, value: str, kind: str
) -> None:
    """Even with private addresses allowed; the network backend is never asked to connect."""
    backend = Counting()

    async def scenario(inputs: InputFiles, _: FileService) -> list[dict[str, Any]]:
        # Past the schema (which refuses the first two itself): resolution refuses them too.
        with pytest.raises(InvalidInput) as caught:
            await inputs.resolve(FIELDS, {"image": value}, ACME)
        return caught.value.errors

    (error,) = run(tmp_path, scenario, backend, fetch_allow_private=True)
    assert (error["loc"], error["type"], error["input"]) == (["input", "image"], kind, value)
    assert backend.connects == []


def test_check_refuses_what_could_never_resolve_before_anything_happens(tmp_path: Path) -> None:
    async def scenario(inputs: InputFiles, _: FileService) -> list[dict[str, Any]]:
        inputs.check(FIELDS, {"image": "file_" + "a" * 32, "more": ["https://a.example/x"]})
        with pytest.raises(InvalidInput) as caught:
            inputs.check(FIELDS, {"image": "hostname", "more": ["/etc/passwd"]})
        return caught.value.errors

    errors = run(tmp_path, scenario)
    assert [(e["loc"], e["type"]) for e in errors] == [
        (["input", "image"], "file_reference_invalid"),
        (["input", "more", 0], "file_reference_invalid"),
    ]


def test_check_refuses_an_address_the_guard_refuses_without_a_lookup(tmp_path: Path) -> None:
    async def scenario(inputs: InputFiles, _: FileService) -> list[dict[str, Any]]:
        inputs.check(FIELDS, {"image": "https://no-such-host.invalid/a.png"})  # resolved later
        with pytest.raises(InvalidInput) as caught:
            inputs.check(
                FIELDS,
                {
                    "image": "http://169.254.169.254/",
                    "more": ["http://127.0.0.1:9/x", "http://a:0/"],
                },
            )
        return caught.value.errors

    metadata, loopback, port = run(tmp_path, scenario)
    assert (metadata["type"], loopback["type"]) == ("file_url_refused", "file_url_refused")
    assert "link-local or cloud metadata address" in metadata["msg"]
    assert "FORETELL_FETCH_ALLOW_PRIVATE=true" in loopback["msg"]
    assert port["msg"] == (
        "the URL cannot be fetched: the URL's port is 0; a receiver listens on a port from 1 to "
        "65535"
    )


def test_a_redirect_to_a_refused_address_is_refused_before_connecting(tmp_path: Path) -> None:
    backend = Counting()
    routes: dict[str, Route] = {
        "/a": (302, {"location": "/b"}, b""),
        "/b": (307, {"location": "http://169.254.169.254/latest/meta-data/"}, b""),
    }

    async def scenario(inputs: InputFiles, _: FileService) -> list[dict[str, Any]]:
        with pytest.raises(InvalidInput) as caught:
            await inputs.resolve(FIELDS, {"image": site.url("/a")}, ACME)
        return caught.value.errors

    with Site.running(routes) as site:
        (error,) = run(tmp_path, scenario, backend, fetch_allow_private=True)
    assert error["type"] == "file_url_refused"
    assert error["msg"].startswith(
        "a redirect led to 'http://169.254.169.254/latest/meta-data/' points at 169.254.169.254"
    )
    assert {host for host, _ in backend.connects} == {"127.0.0.1"}


def test_a_redirect_to_a_file_url_is_refused(tmp_path: Path) -> None:
    routes: dict[str, Route] = {"/a": (301, {"location": "file:///etc/passwd"}, b"")}
    with Site.running(routes) as site:
        (error,) = refused(tmp_path, {"image": site.url("/a")}, fetch_allow_private=True)
    assert (error["type"], error["msg"]) == (
        "file_url_refused",
        "a redirect to 'file:///etc/passwd' is not an http(s) URL",
    )


def test_more_than_five_redirects_are_refused(tmp_path: Path) -> None:
    routes: dict[str, Route] = {f"/{i}": (302, {"location": f"/{i + 1}"}, b"") for i in range(9)}
    with Site.running(routes) as site:
        (error,) = refused(tmp_path, {"image": site.url("/0")}, fetch_allow_private=True)
        assert site.accepted >= 1
    assert error["type"] == "file_fetch_failed"
    assert error["msg"] == f"more than 5 redirects; the last to '{site.url('/6')}'"


def test_a_file_over_the_cap_is_refused_by_its_length_or_as_it_streams(tmp_path: Path) -> None:
    big = b"x" * 5000
    routes: dict[str, Route] = {
        "/declared": (200, {}, big),
        "/streamed": (200, {"x-no-length": "1"}, big),
    }
    with Site.running(routes) as site:
        declared, streamed = refused(
            tmp_path,
            {"more": [site.url("/declared"), site.url("/streamed")]},
            fetch_allow_private=True,
            max_file_bytes=1000,
        )
    assert (declared["type"], declared["loc"]) == ("file_too_large", ["input", "more", 0])
    assert declared["msg"] == (
        "the file is 5,000 bytes, more than the limit of 1,000 bytes (max_file_bytes)"
    )
    assert (streamed["type"], streamed["loc"]) == ("file_too_large", ["input", "more", 1])
    assert streamed["msg"].endswith(
        "bytes or more, more than the limit of 1,000 bytes (max_file_bytes)"
    )


def test_a_url_that_never_answers_is_refused_once_the_time_is_up(tmp_path: Path) -> None:
    routes: dict[str, Route] = {"/slow": Site.HANG}
    with Site.running(routes) as site:
        (error,) = refused(
            tmp_path, {"image": site.url("/slow")}, fetch_allow_private=True, fetch_timeout_s=0.3
        )
    assert (error["type"], error["msg"]) == (
        "file_fetch_timeout",
        "the URL gave no whole answer within 0.3 s (fetch_timeout_s)",
    )


def test_a_404_is_named(tmp_path: Path) -> None:
    with Site.running({}) as site:
        (error,) = refused(
            tmp_path,
            {"image": "data:,ok", "more": [site.url("/gone.png")]},
            fetch_allow_private=True,
        )
    assert error["loc"] == ["input", "more", 0]
    assert (error["type"], error["msg"]) == ("file_fetch_failed", "the URL answered 404 Not Found")


def test_a_stored_file_removed_between_its_look_up_and_its_read_is_gone(tmp_path: Path) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield PNG

    async def scenario(inputs: InputFiles, files: FileService) -> list[dict[str, Any]]:
        stored = await files.upload("acme", "digit.png", "image/png", chunks())
        await files.blobs.delete(stored.id)  # as a delete or the sweep does, after the look-up
        with pytest.raises(InvalidInput) as caught:
            await inputs.resolve(FIELDS, VALIDATOR.validate({"image": stored.id}), ACME)
        return caught.value.errors

    (error,) = run(tmp_path, scenario)
    assert error["type"] == "file_gone"
    assert error["loc"] == ["input", "image"]
    assert "was removed" in error["msg"]


def test_one_inputs_files_together_are_capped_before_they_are_read(tmp_path: Path) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"x" * 700

    async def scenario(inputs: InputFiles, files: FileService) -> list[dict[str, Any]]:
        stored = await files.upload("acme", "a.bin", None, chunks())
        data = VALIDATOR.validate({"more": [stored.id, files.url(stored.id)]})
        with pytest.raises(InvalidInput) as caught:
            await inputs.resolve(FIELDS, data, ACME)
        return caught.value.errors

    (error,) = run(tmp_path, scenario, max_upload_bytes=1024)
    assert error["type"] == "files_too_large"
    assert error["loc"] in (["input", "more", 0], ["input", "more", 1])
    assert "1,400 bytes or more" in error["msg"]
    assert "limit of 1,024 bytes for one request's files (max_upload_bytes)" in error["msg"]


def test_a_compressed_answer_is_decoded_up_to_the_cap_and_no_further(tmp_path: Path) -> None:
    # 50 MB of zeros in 50 KB of gzip: httpx inflated each chunk it read whole, so one
    # chunk of a bomb took many times the cap in memory before the cap was checked.
    bomb = gzip.compress(b"\0" * 50_000_000)
    routes: dict[str, Route] = {
        "/small.png": (200, {"content-encoding": "gzip"}, gzip.compress(PNG)),
        "/deflated.png": (200, {"content-encoding": "deflate"}, zlib.compress(PNG)),
        "/bomb": (200, {"content-encoding": "gzip"}, bomb),
        "/broken": (200, {"content-encoding": "gzip"}, b"not gzip at all"),
        "/other": (200, {"content-encoding": "compress"}, b"\x1f\x9d"),
    }
    with Site.running(routes) as site:
        good = resolve(
            tmp_path,
            {"image": site.url("/small.png"), "more": [site.url("/deflated.png")]},
            fetch_allow_private=True,
        )
        bomb_error, broken, other = refused(
            tmp_path,
            {"more": [site.url(p) for p in ("/bomb", "/broken", "/other")]},
            fetch_allow_private=True,
            max_file_bytes=100_000,  # over the bomb's 50 KB: it is refused as it is inflated
        )
    assert (good.input["image"].data, good.input["more"][0].data) == (PNG, PNG)
    assert (bomb_error["type"], bomb_error["msg"]) == (
        "file_too_large",
        "the file is 100,001 bytes or more, more than the limit of 100,000 bytes (max_file_bytes)",
    )
    assert (broken["type"], other["type"]) == ("file_fetch_failed", "file_fetch_failed")
    assert broken["msg"].startswith("the URL's gzip body cannot be decoded: ")
    assert other["msg"] == (
        "the URL answered in Content-Encoding 'compress'; only gzip and deflate are decoded"
    )
