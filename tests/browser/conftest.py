"""Real-browser tests: a `foretell serve` process and Debian's chromium, driven by Playwright.

`server` is the session's server (its `url`, `admin_key`), serving only `MODELS`; `page` is a new
browser context's page (fresh sessionStorage, base URL the server's: `page.goto("/docs")`);
`traffic` holds every URL that page requested, in order, and its uncaught script errors. A request
to any origin other than the server's is refused and recorded: `assert traffic.foreign() == []`
checks that a page works offline. `screenshot(name)` saves the page as
test-artifacts/screenshots/NAME.png, for people to look at.

The browser is Debian's chromium (`make test` installs it: scripts/apt.sh chromium), never one
that Playwright downloads; one per test module, each test in its own context.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from _browser import Traffic, same_origin
from _server import Server, build_repository, running_server
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The models the browser tests run: a form of numbers, an image upload, an image output, a
# text stream.
MODELS = ("iris", "digits-image", "draw-digit", "tiny-gpt2")
# And from tests/fixtures: one input of each kind (a form of every control); one that sleeps and
# logs (a queue to wait in, logs to show).
FIXTURE_MODELS = ("typed-inputs", "sleeps")
# Generous: a busy 2-core machine may take seconds for a first prediction (a replica starting).
TIMEOUT_MS = 60_000


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`foretell serve` over MODELS, ready, on a free port of 127.0.0.1."""
    base = tmp_path_factory.mktemp("browser")
    repo = build_repository(base, demo=MODELS, fixtures=FIXTURE_MODELS)
    with running_server(repo, base / "data") as started:
        yield started


# Module-scoped, not session-scoped: while Playwright's sync API is up, its event loop is the
# thread's running loop (between calls too), and every async test run meanwhile would fail
# ("Cannot run the event loop while another loop is running").
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    expect.set_options(timeout=TIMEOUT_MS)  # `expect` waits as long as the page's own calls
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no {CHROMIUM}: install Debian's chromium (scripts/apt.sh chromium)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One chromium for the module (a fresh temporary profile, which Playwright makes)."""
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield launched
    launched.close()


@pytest.fixture
def traffic(server: Server) -> Traffic:
    return Traffic(server.url)


@pytest.fixture
def page(browser: Browser, server: Server, traffic: Traffic) -> Iterator[Page]:
    """A page in a new context (its own sessionStorage), its requests recorded in `traffic`."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    # Nothing may leave the machine: a request elsewhere is recorded (below) and refused.
    context.route(lambda url: not same_origin(url, server.url), lambda route: route.abort())
    opened = context.new_page()
    opened.on("request", lambda request: traffic.requests.append(request.url))
    opened.on("pageerror", lambda error: traffic.errors.append(str(error)))
    yield opened
    context.close()


@pytest.fixture
def screenshot(page: Page) -> Callable[[str], Path]:
    """`screenshot(name)` saves the page whole as test-artifacts/screenshots/NAME.png."""

    def save(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
