"""Webhook endpoints in a real browser: a tenant owner finds Webhooks in the navigation, sees the empty
state, is refused a private URL with the guard's reason, creates an endpoint (the secret shown once),
sends a test event that a real local receiver gets, sees its attempt, rotates the secret and disables
the endpoint, each after confirming; recovers failed deliveries watching the progress, and purges dead
letters."""

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


def test_an_owner_recovers_failed_deliveries_with_live_progress_and_purges_dead_letters(
        page, live_server, webhook_env, tenant_world, receiver, monkeypatch):
    from app.webhooks import outbound

    monkeypatch.setitem(webhook_env.config, "WEBHOOK_RETRY_SCHEDULE", [])  # the first failure is final
    tenant = tenant_world["a"]["tenant"]
    endpoint, _ = outbound.create_endpoint(helpers.owner(tenant), tenant.id, {"url": receiver.url})
    receiver.answer(500, times=3)
    messages = [outbound.publish(tenant.id, "member.added", {"n": n})[0] for n in range(3)]
    run_jobs()

    _sign_in_as(page, tenant_world, "owner")
    page.click("nav >> text=Webhooks")
    page.wait_for_url("**/t/tenant-a/webhooks")
    expect(page.locator("#webhook-chart .main-svg").first).to_be_visible()  # Plotly drew the tenant's attempts

    page.click(f"text={receiver.url}")
    page.wait_for_url(f"**/t/tenant-a/webhooks/{endpoint.id}")
    expect(page.locator("#dead-letters")).to_contain_text("3 dead deliveries")
    seen = _answer_next_dialog(page, accept=True)
    page.click("#recover button:has-text('Recover')")
    assert seen and "Send again everything that failed" in seen[0]
    panel = page.locator("#recovery")
    expect(panel).to_have_attribute("data-status", "queued")
    expect(panel).to_contain_text("0 of 3 queued again")
    run_jobs()  # the worker runs the recovery, then the deliveries (the receiver now answers 200)
    expect(panel).to_have_attribute("data-status", "succeeded", timeout=5000)  # the panel polled itself
    expect(panel).to_contain_text("3 of 3 queued again")
    assert sorted(r.headers["webhook-id"] for r in receiver.requests[3:]) == sorted(m.id for m in messages)

    receiver.answer(500, times=2)
    for n in range(2):
        outbound.publish(tenant.id, "member.added", {"again": n})
    run_jobs()
    page.reload()
    expect(page.locator("#dead-letters")).to_contain_text("2 dead deliveries")
    seen = _answer_next_dialog(page, accept=False)  # cancelled: nothing discarded
    page.click("button:has-text('Purge dead letters')")
    assert seen and "cannot be recovered" in seen[0]
    expect(page.locator("#dead-letters")).to_contain_text("2 dead deliveries")
    seen = _answer_next_dialog(page, accept=True)
    page.click("button:has-text('Purge dead letters')")
    expect(page.locator(".toast")).to_contain_text("2 dead deliveries discarded")
    expect(page.locator("#dead-letters")).to_have_count(0)
    expect(page.locator("#deliveries-table tbody tr")).to_have_count(3)  # the three recovered ones stay
