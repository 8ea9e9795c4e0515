"""The staff overview in a real browser: figures from the snapshot, "Refresh now" recomputes them, and a
figure links to its page (the tenant list filtered by that status)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.tenancy import service as tenancy_service
from tests.browser.test_admin_pages import _sign_in_staff

pytestmark = pytest.mark.browser


def test_overview_refreshes_and_links_to_details(page, live_server, make):
    make.tenant(slug="first-co", name="First Co")
    _sign_in_staff(page, make)
    expect(page.locator("#console-tenants [data-status='active']")).to_have_text("1")
    expect(page.locator("#console-queues")).to_contain_text("webhooks")
    expect(page.locator("#console-calls")).to_contain_text("This month")
    suspended = make.tenant(slug="second-co", name="Second Co")
    tenancy_service.set_status(make.system, suspended.id, "suspended", "test")
    page.reload()
    expect(page.locator("#console-tenants [data-status='suspended']")).to_have_text("0")  # the snapshot
    page.click("button:has-text('Refresh now')")
    expect(page.locator(".toast")).to_contain_text("The overview is up to date")
    expect(page.locator("#console-tenants [data-status='suspended']")).to_have_text("1")
    expect(page.locator("#console-audit")).to_contain_text("tenant.suspended")
    page.click("#console-tenants a:has-text('suspended')")
    page.wait_for_url("**/admin/tenants/?status=suspended")
    expect(page.locator("#tenants-table tbody tr")).to_have_count(1)
    expect(page.locator("#tenants-table")).to_contain_text("Second Co")
