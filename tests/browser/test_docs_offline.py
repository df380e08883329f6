"""/docs and /redoc render in a real browser with nothing fetched from another origin (the
page fixture refuses and records any such request: the machine might as well be offline), and
Swagger UI offers an example body for each model the document describes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from _browser import Traffic
from _server import Server
from playwright.sync_api import Page, expect


def blocked_by_policy(page: Page) -> list[str]:
    """The console's Content-Security-Policy reports: what the page's policy refused it."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: found.append(message.text) if "Content Security" in message.text else None,
    )
    return found


def test_swagger_ui_renders_its_operations_offline(
    page: Page, traffic: Traffic, screenshot: Callable[[str], Path]
) -> None:
    refused = blocked_by_policy(page)
    page.goto("/docs")

    create = page.locator("#operations-predictions-create_prediction_v1_predictions_post")
    expect(create).to_be_visible()
    assert page.locator(".opblock").count() > 20
    create.locator(".opblock-summary").click()
    examples = create.locator("select").filter(has_text="demo/iris")
    expect(examples).to_be_visible()
    assert "demo/iris (version 2)" in examples.inner_text()
    screenshot("docs-swagger-ui")

    assert traffic.foreign() == []
    assert traffic.errors == []
    assert any(url.endswith("/openapi.json") for url in traffic.requests)
    assert any(url.endswith("/swagger-ui-bundle.js") for url in traffic.requests)
    assert refused == []  # it needs nothing its page's policy forbids


def test_the_key_authorized_fetches_the_document_its_models_need(
    page: Page, server: Server, traffic: Traffic
) -> None:
    """A private model is in the document a key that may see it fetches: once the key is
    entered in Authorize, a reload asks for the document with it."""
    asked: list[str | None] = []
    page.on(
        "request",
        lambda r: (
            asked.append(r.headers.get("authorization"))
            if r.url.endswith("/openapi.json")
            else None
        ),
    )
    page.goto("/docs")
    page.locator("button.authorize").first.click()
    page.locator(".modal-ux input").fill(server.admin_key)
    page.locator(".modal-ux button.authorize").click()
    page.locator(".modal-ux button.btn-done").click()

    page.reload()
    expect(
        page.locator("#operations-predictions-create_prediction_v1_predictions_post")
    ).to_be_visible()

    assert asked == [None, f"Bearer {server.admin_key}"]
    assert traffic.foreign() == []
    assert traffic.errors == []


def test_redoc_renders_its_title_offline(
    page: Page, traffic: Traffic, screenshot: Callable[[str], Path]
) -> None:
    refused = blocked_by_policy(page)
    failed: dict[str, str | None] = {}
    page.on("requestfailed", lambda request: failed.update({request.url: request.failure}))
    page.goto("/redoc")

    expect(page.locator("h1").filter(has_text="foretell")).to_be_visible()
    expect(page.get_by_text("Durable predictions over the models in a folder")).to_be_visible()
    expect(page.get_by_text("API docs by Redocly")).to_be_visible()  # its logo is from a CDN
    screenshot("docs-redoc")

    # Redoc's sidebar asks for its logo from cdn.redoc.ly, always: the page's policy stops it
    # in the browser, before it leaves (the page fixture would abort it after), and the logo
    # hides itself.
    for url in traffic.foreign():
        assert url == "https://cdn.redoc.ly/redoc/logo-mini.svg", traffic.foreign()
        assert failed.get(url) == "csp", failed  # blocked by the policy, not by the fixture
    assert [message for message in refused if "cdn.redoc.ly" not in message] == []
    assert page.locator("img[alt='redocly logo']").count() == 0
    assert traffic.errors == []
    assert any(url.endswith("/redoc.standalone.js") for url in traffic.requests)
