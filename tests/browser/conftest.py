"""Browser fixtures: the app served on a real port, and Debian's Chromium driven by Playwright.

Without Chromium these tests skip with the reason; with REQUIRE_BROWSER=1 they fail instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from tests.conftest import SETTINGS

CHROMIUM = SETTINGS["chromium"]
HTTP_STATUS_LOGS = ("Failed to load resource", "Response Status Error Code ")


def _require_browser() -> None:
    if not os.path.exists(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if SETTINGS["require_browser"]:
            pytest.fail(message + " and REQUIRE_BROWSER=1")
        pytest.skip(message)


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:
    """The test app on 127.0.0.1:<free port>, in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = base
    yield base
    server.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update"],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:
    """A fresh browser context; JavaScript errors and failed same-origin requests fail the test."""
    context = browser.new_context(base_url=live_server)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    # Console errors include CSP violations; HTTP error statuses that a test provokes on purpose
    # (a 422 form, a 409 shown as a toast) are logged by Chromium as "Failed to load resource" and
    # by htmx as "Response Status Error Code …", and are not JavaScript errors.
    tab.on("console", lambda msg: errors.append(f"console: {msg.text}")
           if msg.type == "error" and not msg.text.startswith(HTTP_STATUS_LOGS) else None)
    tab.js_errors = errors
    _settle_after_navigation(tab)
    yield tab
    context.close()
    assert not errors, "JavaScript errors in the browser:\n" + "\n".join(errors)


SETTLED = "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"


def _settle_after_navigation(tab) -> None:
    """htmx pushes the new URL before it has wired up the swapped-in content (that happens when the
    swap settles), so waiting for a URL alone lets a test type into a form htmx has not bound yet."""
    wait_for_url = tab.wait_for_url

    def wait_for_url_and_settle(*args, **kwargs):
        wait_for_url(*args, **kwargs)
        tab.wait_for_function(SETTLED)

    tab.wait_for_url = wait_for_url_and_settle
