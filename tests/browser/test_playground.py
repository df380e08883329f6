"""The playground at `/` in a real browser: a key entered once, demo/iris run from its form,
an image uploaded, a text stream watched as it grows, the predictions page; nothing requested
from anywhere but the server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _browser import Traffic
from _server import Server
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow


def test_the_page_asks_for_a_key_and_loads_nothing_from_elsewhere(
    page: Page, server: Server, traffic: Traffic, screenshot: Callable[[str], Path]
) -> None:
    page.goto("/")

    expect(page).to_have_title("foretell playground")
    screenshot("key")
    assert traffic.foreign() == []
    assert traffic.errors == []
