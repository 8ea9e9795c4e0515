"""The staff webhooks page in a real browser: deliveries to two tenants' endpoints (one succeeds, one
answers 410 Gone and is disabled); staff see the success-rate chart drawn, the disabled endpoint with
its reason, and narrow the deliveries to dead letters in place."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.webhooks import catalogue, outbound
from tests.browser.test_admin_pages import _sign_in_staff
from tests.webhooks.outbound_helpers import owner, run_jobs, start_receiver

pytestmark = pytest.mark.browser


def test_staff_see_outbound_deliveries_and_filter_dead_letters(page, live_server, app, make, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_HTTP", True)
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOWED_SUBNETS", ["127.0.0.0/8"])
    catalogue.ensure_event_types()
    receiver = start_receiver()
    try:
        alpha, beta = make.tenant(name="Alpha Ltd"), make.tenant(name="Beta Ltd")
        outbound.create_endpoint(owner(alpha), alpha.id, {"url": receiver.url})
        gone, _ = outbound.create_endpoint(owner(beta), beta.id, {"url": receiver.url + "/gone"})
        receiver.answer(200)
        outbound.publish(alpha.id, "member.added", {"email": "ada@example.com"})
        run_jobs()
        receiver.answer(410)
        outbound.publish(beta.id, "tenant.updated", {"name": "Beta"})
        run_jobs()
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()

    _sign_in_staff(page, make)
    page.click("nav >> text=Webhooks")
    page.wait_for_url("**/admin/webhooks/")
    expect(page.locator("#outbound h2")).to_have_text("Outbound")
    expect(page.locator("#outbound-chart svg").first).to_be_visible()  # Plotly drew the chart
    expect(page.locator("#outbound-troubled")).to_contain_text("Beta Ltd")
    expect(page.locator(f"#troubled-{gone.id}")).to_contain_text("disabled")
    expect(page.locator("#outbound-deliveries tbody tr")).to_have_count(2)

    page.select_option("#outbound-filters [name=delivery_status]", "dead")
    expect(page.locator("#outbound-deliveries tbody tr")).to_have_count(1)
    expect(page.locator("#outbound-deliveries")).to_contain_text("Beta Ltd")
    expect(page.locator("#outbound-deliveries")).not_to_contain_text("Alpha Ltd")
    assert "delivery_status=dead" in page.url  # the filter is in the address, for sharing
    page.fill("#outbound-filters [name=tenant]", "no-such-tenant")
    page.click("#outbound-filters button[type=submit]")
    expect(page.locator("#outbound-deliveries")).to_contain_text("No tenant has the slug or id")
