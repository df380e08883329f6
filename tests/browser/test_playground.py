"""The playground at `/` in a real browser: a key entered once, demo/iris run from its form,
an image uploaded to demo/digits-image, demo/tiny-gpt2's text watched as it grows, the
predictions page; nothing requested from anywhere but the server, the key never in a URL."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _browser import Traffic
from _server import Server, wait_for
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow

Screenshot = Callable[[str], Path]

# Every control a person fills in names itself to a screen reader: a <label>, or aria-label.
UNLABELLED = """() => [...document.querySelectorAll("main input, main select, main textarea")]
  .filter((e) => e.getAttribute("aria-hidden") !== "true" && e.type !== "hidden")
  .filter((e) => e.labels.length === 0 && !e.getAttribute("aria-label"))
  .map((e) => e.outerHTML)"""

# Each state the output box passes through, as a person would see it: recorded on every change.
RECORD_OUTPUT = """() => {
  window.seen = [];
  const box = document.querySelector(".output-box");
  const note = () => window.seen.push([box.dataset.state, box.textContent.length]);
  new MutationObserver(note).observe(box, {
    childList: true, subtree: true, characterData: true, attributes: true,
  });
}"""


def sign_in(page: Page, server: Server) -> None:
    page.goto("/")
    page.get_by_label("API key").fill(server.admin_key)
    page.get_by_label("API key").press("Enter")  # the keyboard's way in
    expect(page.get_by_role("heading", name="Models", level=1)).to_be_visible()


def create(server: Server, model: str, input: dict[str, Any]) -> dict[str, Any]:
    with server.client() as http:
        answer = http.post(
            "/v1/predictions", json={"model": model, "input": input}, headers={"Prefer": "wait=60"}
        )
        answer.raise_for_status()
        record: dict[str, Any] = answer.json()
        return record


def assert_clean(traffic: Traffic, server: Server) -> None:
    assert traffic.foreign() == []
    assert not [url for url in traffic.requests if server.admin_key in url]
    assert traffic.errors == []


def test_a_key_then_demo_iris_run_from_its_form(
    page: Page, server: Server, traffic: Traffic, screenshot: Screenshot
) -> None:
    page.goto("/")
    key = page.get_by_label("API key")
    expect(key).to_be_focused()
    screenshot("01-key")
    key.fill("ft_not_a_key")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")

    key.fill(server.admin_key)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("link", name="demo/iris")).to_be_visible()
    expect(page.get_by_role("link", name="demo/tiny-gpt2")).to_be_visible()
    screenshot("02-models")
    # Kept for this tab only.
    assert page.evaluate("sessionStorage.getItem('foretell.key')") == server.admin_key
    assert page.evaluate("localStorage.length") == 0

    page.get_by_role("link", name="demo/iris").click()
    features = page.get_by_label("features")
    features.fill("[[5.1, 3.5]]")
    page.get_by_role("button", name="Run").click()
    # Refused before it ran, the reason on the field itself.
    expect(features).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field-error").first).to_contain_text("at least 4")

    features.fill("[[5.1, 3.5, 1.4, 0.2]]")
    assert page.evaluate(UNLABELLED) == []
    page.get_by_role("button", name="Run").focus()
    page.keyboard.press("Enter")

    status = page.get_by_role("status")
    expect(status).to_contain_text("succeeded")
    output = page.locator(".output-box")
    expect(output.locator("dt", has_text="label")).to_be_visible()
    expect(output.locator("dd").first).to_have_text("0")  # setosa
    expect(page.get_by_role("tabpanel")).to_contain_text('"features":[[5.1,3.5,1.4,0.2]]')
    screenshot("03-iris")
    page.emulate_media(color_scheme="dark")
    screenshot("03-iris-dark")

    # The same input as one JSON object, edited and run again.
    page.get_by_role("button", name="Edit as JSON").click()
    whole = page.get_by_label("Input (JSON)")
    expect(whole).to_have_value(json.dumps({"features": [[5.1, 3.5, 1.4, 0.2]]}, indent=2))
    whole.fill('{"features": [[6.3, 3.3, 6.0, 2.5]]}')
    page.get_by_role("button", name="Run").click()
    expect(output.locator("dd").first).to_have_text("2")  # virginica
    assert_clean(traffic, server)


def test_a_form_of_every_kind_of_input(
    page: Page, server: Server, traffic: Traffic, screenshot: Screenshot
) -> None:
    sign_in(page, server)
    page.goto("/#/models/fixtures/typed-inputs")
    # Defaults filled in, limits and descriptions shown as hints.
    expect(page.get_by_label("Count")).to_have_value("5")
    expect(page.get_by_text("a short name · at least 2 characters, at most 8")).to_be_visible()
    expect(page.get_by_label("Color")).to_have_js_property("tagName", "SELECT")
    page.get_by_label("Name").fill("ada")
    page.get_by_label("Ratio").fill("0.25")
    page.get_by_label("Color").select_option("green")
    page.get_by_label("Level").select_option("3")
    page.get_by_label("Loud").check()
    page.get_by_label("Weights").fill("0.5, 1.5, 2")
    assert page.evaluate(UNLABELLED) == []
    page.get_by_role("button", name="Run").click()

    expect(page.get_by_role("status")).to_contain_text("succeeded")
    shown = page.locator(".output-box .preview")
    expect(shown).to_contain_text("ada")
    assert page.locator(".output-box pre.code").text_content() == json.dumps(
        {
            "name": "ada",
            "count": 5,
            "ratio": 0.25,
            "color": "green",
            "level": 3,
            "loud": True,
            "weights": [0.5, 1.5, 2.0],
        },
        indent=2,
    ).replace("2.0", "2")
    screenshot("04-typed-inputs")
    assert_clean(traffic, server)


def test_a_queued_run_shows_its_place_then_its_logs(
    page: Page, server: Server, traffic: Traffic, screenshot: Screenshot
) -> None:
    with server.client() as http:
        ahead = http.post(
            "/v1/predictions", json={"model": "fixtures/sleeps", "input": {"seconds": 30}}
        ).json()
        # Running, so that the page's run is the one that waits.
        wait_for(
            lambda: http.get(f"/v1/predictions/{ahead['id']}").json()["status"] == "processing",
            timeout=60,
            what="fixtures/sleeps to start",
        )
    sign_in(page, server)
    page.goto("/#/models/fixtures/sleeps")
    page.get_by_label("seconds").fill("0.2")
    page.get_by_role("button", name="Run").click()

    status = page.get_by_role("status")
    expect(status).to_contain_text("pending")
    expect(status).to_contain_text("#1 of 1 in the queue")
    screenshot("05-queued")
    with server.client() as http:  # the one ahead leaves; this one runs
        http.post(f"/v1/predictions/{ahead['id']}/cancel").raise_for_status()
    expect(status).to_contain_text("succeeded")
    expect(page.locator(".logs")).to_contain_text("sleeping 0.2 s")
    assert_clean(traffic, server)


def test_a_file_output_shown_as_its_image(
    page: Page, server: Server, traffic: Traffic, screenshot: Screenshot
) -> None:
    sign_in(page, server)
    page.goto("/#/models/demo/draw-digit")
    page.get_by_label("Digit", exact=True).fill("7")
    page.get_by_role("button", name="Run").click()

    expect(page.get_by_role("status")).to_contain_text("succeeded")
    image = page.locator(".output-box img")
    expect(image).to_be_visible()
    # Fetched with the key (an <img> cannot send it) and shown from a blob: URL.
    assert image.evaluate("(img) => img.src.startsWith('blob:') && img.naturalWidth") == 64
    screenshot("06-draw-digit-image-output")
    assert_clean(traffic, server)


def test_an_image_uploaded_to_demo_digits_image(
    page: Page, server: Server, traffic: Traffic, screenshot: Screenshot, tmp_path: Path
) -> None:
    drawn = create(server, "demo/draw-digit", {"digit": 3})
    with server.client() as http:
        png = http.get(drawn["output"])
        png.raise_for_status()
    digit = tmp_path / "three.png"
    digit.write_bytes(png.content)

    sign_in(page, server)
    page.goto("/#/models/demo/digits-image")
    page.get_by_label("Image", exact=True).set_input_files(digit)
    expect(page.get_by_text("Uploaded three.png")).to_be_visible()
    page.get_by_role("button", name="Run").click()

    expect(page.get_by_role("status")).to_contain_text("succeeded")
    expect(page.locator(".output-box .bars .max .bar-label")).to_have_text("3")
    screenshot("07-digits-image-upload")
    uploads = [url for url in traffic.requests if "/v1/files?" in url]
    assert len(uploads) == 1
    assert_clean(traffic, server)


def test_a_streaming_models_output_grows_before_it_ends(
    page: Page, server: Server, traffic: Traffic, screenshot: Screenshot
) -> None:
    sign_in(page, server)
    page.goto("/#/models/demo/tiny-gpt2")
    page.get_by_label("prompt").fill("Once upon a time")
    page.get_by_label("max_new_tokens").fill("48")
    page.evaluate(RECORD_OUTPUT)
    page.get_by_role("button", name="Run").click()

    output = page.locator(".output-box")
    # Shown as it grows (on a fast machine the end may come first: `seen` below is the check).
    expect(output).to_have_attribute("data-state", re.compile("partial|final"))
    screenshot("08-stream-partial")
    expect(output).to_have_attribute("data-state", "final")
    expect(page.get_by_role("status")).to_contain_text("succeeded")
    screenshot("09-stream-final")

    seen = [(state, length) for state, length in page.evaluate("window.seen")]
    final = output.locator(".preview").text_content() or ""
    partial = [length for state, length in seen if state == "partial"]
    assert partial, seen
    # It grew: text shorter than the end's was shown first, more than once.
    assert 0 < min(partial) < len(final), (partial, len(final))
    assert len(set(partial)) > 1, partial
    assert seen.index(("partial", partial[0])) < next(
        i for i, (state, _) in enumerate(seen) if state == "final"
    )
    assert any("/v1/predictions" in url for url in traffic.requests)
    assert_clean(traffic, server)


def test_the_predictions_page_lists_filters_pages_and_opens_one(
    page: Page, server: Server, traffic: Traffic, screenshot: Screenshot
) -> None:
    made = [create(server, "demo/iris", {"features": [[6.3, 3.3, 6.0, 2.5]]}) for _ in range(26)]
    newest = made[-1]
    create(server, "demo/draw-digit", {"digit": 1})

    sign_in(page, server)
    page.get_by_role("link", name="Predictions").click()
    expect(page.get_by_role("heading", name="Predictions", level=1)).to_be_visible()
    rows = page.locator("table.predictions tbody tr")
    expect(rows.first).to_contain_text("demo/draw-digit")

    page.get_by_label("Model").select_option("demo/iris")
    page.get_by_label("Status").select_option("succeeded")
    expect(page).to_have_url(f"{server.url}/#/predictions?model=demo%2Firis&status=succeeded")
    expect(rows.first).to_contain_text(newest["id"][:8])
    expect(rows).to_have_count(25)  # a page; the next one on request
    page.get_by_role("button", name="Load more").click()
    expect(rows.nth(25)).to_be_visible()
    assert all("demo/iris" in text for text in rows.all_inner_texts())
    screenshot("10-predictions")

    page.get_by_role("link", name=newest["id"][:8]).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(newest["id"][:8])
    expect(page.get_by_role("status")).to_contain_text("succeeded")
    expect(page.locator(".output-box dd").first).to_have_text("2")  # virginica
    screenshot("11-prediction")
    assert_clean(traffic, server)
