"""Webhook endpoints in a real browser: a tenant owner finds Webhooks in the navigation, sees the empty
state, is refused a private URL with the guard's reason, creates an endpoint (the secret shown once),
sends a test event that a real local receiver gets, sees its attempt, rotates the secret and disables
the endpoint, each after confirming."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_portal_pages import _answer_next_dialog, _sign_in_as
from tests.webhooks import outbound_helpers as helpers
from tests.webhooks.outbound_helpers import run_jobs

pytestmark = pytest.mark.browser
receiver, webhook_env = helpers.receiver, helpers.webhook_env  # fixtures


def test_an_owner_creates_tests_rotates_and_disables_an_endpoint(page, live_server, webhook_env, tenant_world,
                                                                  receiver):
    _sign_in_as(page, tenant_world, "owner")
    page.click("nav >> text=Webhooks")
    page.wait_for_url("**/t/tenant-a/webhooks")
    expect(page.locator("h1")).to_have_text("Webhooks")
    expect(page.locator(".empty")).to_contain_text("No webhook endpoints yet")

    page.click("text=Add your first endpoint")
    page.wait_for_url("**/t/tenant-a/webhooks/new")
    page.fill("#f-url", "http://10.1.2.3/hook")  # private: the SSRF guard refuses it
    page.click("button:has-text('Create endpoint')")
    expect(page.locator("#e-url")).to_be_visible()
    expect(page.locator("#e-url")).not_to_be_empty()

    page.fill("#f-url", receiver.url)
    page.fill("#f-description", "orders service")
    page.click("button:has-text('Create endpoint')")
    secret = page.locator("#new-secret")
    expect(secret).to_contain_text("whsec_")
    expect(page.locator("#endpoint-secret")).to_contain_text("You won't see it again")
    first_secret = secret.inner_text()

    page.click("text=I have copied it")
    page.wait_for_url("**/t/tenant-a/webhooks/ep_*")
    expect(page.locator("#endpoint-status")).to_contain_text("enabled")
    expect(page.locator("#deliveries")).to_contain_text("Nothing sent yet")

    receiver.answer(200, body=b'{"ok": "from the receiver"}')
    page.click("button:has-text('Send test event')")
    expect(page.locator(".toast")).to_contain_text("test event")
    run_jobs()
    assert len(receiver.requests) == 1 and b"webhook.test" in receiver.requests[0].body
    page.reload()
    row = page.locator("#deliveries-table tbody tr").first
    expect(row).to_contain_text("webhook.test")
    expect(row).to_contain_text("succeeded")
    expect(row).to_contain_text("HTTP 200")
    row.locator("summary").first.click()
    expect(row).to_contain_text("from the receiver")

    seen = _answer_next_dialog(page, accept=True)
    page.click("button:has-text('Rotate secret')")
    expect(page.locator("h1")).to_have_text("Signing secret rotated")
    assert seen and "Rotate the signing secret" in seen[0]
    expect(page.locator("#new-secret")).to_contain_text("whsec_")
    assert page.locator("#new-secret").inner_text() != first_secret

    page.click("text=I have copied it")
    page.wait_for_url("**/t/tenant-a/webhooks/ep_*")
    seen = _answer_next_dialog(page, accept=False)  # cancelled: still enabled
    page.click("button:has-text('Disable')")
    assert seen and "Disable" in seen[0]
    expect(page.locator("#endpoint-status")).to_contain_text("enabled")
    seen = _answer_next_dialog(page, accept=True)
    page.click("button:has-text('Disable')")
    expect(page.locator("#endpoint-status")).to_contain_text("disabled")
    expect(page.locator("button:has-text('Enable')")).to_be_visible()
