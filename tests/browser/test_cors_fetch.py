"""Seed 003's browser `fetch` example, run as the seed prints it in chromium from a page of
another origin: it gets its answer from a server started with that origin in --cors-origin, and
the browser refuses it the answer of a server without CORS."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from _server import ROOT, Server, build_repository, running_server
from playwright.sync_api import Browser, Error, Page

SEED = Path("/work/shared/seeds/003_49719b4f03a8186c.txt")
if not SEED.exists():  # the seeds sit beside the repository wherever it is checked out
    SEED = ROOT.parent / "shared" / "seeds" / "003_49719b4f03a8186c.txt"
SEED_URL = "http://localhost:8080"


def fetch_example() -> str:
    """The seed's JavaScript block up to its Axios part: the Fetch API example."""
    block = re.findall(r"```javascript\n(.*?)```", SEED.read_text(), flags=re.DOTALL)[0]
    return block.split("// Axios")[0]


class _Blank(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>another origin</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[str]:
    """The origin of a page that is not the API's: a blank page on another port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Blank)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(scope="module")
def gpux(tmp_path_factory: pytest.TempPathFactory, elsewhere: str) -> Iterator[Server]:
    """GPUX's /predict over demo/sentiment-text, keyless (as `make run`), CORS for `elsewhere`."""
    base = tmp_path_factory.mktemp("cors-browser")
    repo = build_repository(base, demo=("sentiment", "sentiment-text"), fixtures=())
    args = ["--anonymous-public", "--default-model", "demo/sentiment-text"]
    with running_server(repo, base / "data", args=[*args, "--cors-origin", elsewhere]) as server:
        yield server


@pytest.fixture
def foreign_page(browser: Browser, elsewhere: str) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(60_000)
    opened = context.new_page()
    opened.goto(elsewhere)
    yield opened
    context.close()


def run_seed_example(page: Page, url: str) -> object:
    """The example in an async function on `page`, with the server's URL for the seed's."""
    code = fetch_example().replace(SEED_URL, url)
    return page.evaluate(f"async () => {{ {code}; return result; }}")


def test_seed_003_fetch_works_from_another_origin(foreign_page: Page, gpux: Server) -> None:
    result = run_seed_example(foreign_page, gpux.url)

    assert isinstance(result, dict), result
    assert len(result["sentiment"]) == 2
    assert result["sentiment"][1] > result["sentiment"][0]  # "love" is positive


def test_without_cors_the_browser_withholds_the_answer(foreign_page: Page, server: Server) -> None:
    # The request reaches the server, which answers without CORS headers: the page may not read.
    with pytest.raises(Error, match="TypeError: Failed to fetch"):
        run_seed_example(foreign_page, server.url)
