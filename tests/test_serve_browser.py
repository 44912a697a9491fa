"""The upload page in a real browser: Debian's chromium driven by Playwright for Python (issue 17, section 3).

Never `playwright install` (it downloads a browser): the Makefile's test target installs Debian's
chromium with apt-get when /usr/bin/chromium is missing. ``EFFNET_UPDATE_DOCS=1`` also writes the
screenshot to docs/serving-page.png.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

from _serve_utils import photos, server_in_thread  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage", "--disable-gpu",
         "--no-first-run", "--disable-component-update", "--disable-sync"]
DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def served():
    from effnet.deploy.pipeline import load_classifier
    from effnet.serve import local_app, warm_up

    classifier = load_classifier("lite0", "lite0")
    warm_up(classifier)
    app, state, batcher = local_app(classifier)
    with server_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}", state
    batcher.close(10)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` (make test does)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def test_upload_a_photo_then_see_413_and_503_as_messages(served, browser, tmp_path):
    base, state = served
    photo = tmp_path / "coffee.png"
    photo.write_bytes(photos()["coffee.png"])
    page = browser.new_page(viewport={"width": 900, "height": 620})
    page.set_default_timeout(60_000)
    page.goto(base + "/")
    page.wait_for_function("document.getElementById('model').textContent.includes('1000 classes')")
    page.set_input_files("#files", str(photo))
    page.wait_for_selector(".result .label")
    labels = page.locator(".result .label").all_inner_texts()
    assert labels[0] == "espresso" and len(labels) == 5
    page.screenshot(path=str(tmp_path / "serving-page.png"), full_page=True)
    if os.environ.get("EFFNET_UPDATE_DOCS"):
        shutil.copyfile(tmp_path / "serving-page.png", DOCS / "serving-page.png")

    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff" + b"\0" * (9 << 20))
    page.set_input_files("#files", str(big))
    page.wait_for_function("document.getElementById('error').textContent.length > 0")
    assert page.inner_text("#error").startswith("413: the body is") and "8 MiB" in page.inner_text("#error")
    assert page.locator(".result").count() == 0

    state.start_drain()
    page.set_input_files("#files", str(photo))
    page.wait_for_function("document.getElementById('error').textContent.startsWith('503')")
    assert "shutting down" in page.inner_text("#error")
    page.close()
