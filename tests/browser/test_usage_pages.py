"""The tenant usage page in a real browser: the numbers, and the Plotly chart drawn under the CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.usage import rollup
from tests.factories import Factories

pytestmark = pytest.mark.browser


def test_owner_opens_usage_and_sees_the_chart(page, client, tenant_world):
    a = tenant_world["a"]
    for _ in range(5):
        client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {a['token']}"})
    rollup.rollup_all()

    page.goto("/login")
    page.fill("#f-email", a["users"]["owner"].email)
    page.fill("#f-password", Factories.PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/t/tenant-a/")
    page.click("nav >> text=Usage")  # a boosted navigation: the chart is drawn after the swap
    page.wait_for_url("**/t/tenant-a/usage")
    expect(page.locator("h1")).to_have_text("Usage")
    expect(page.locator("#usage-used")).to_have_text("5")
    expect(page.locator("#usage-chart svg.main-svg").first).to_be_visible()
    expect(page.locator("#usage-endpoints")).to_contain_text("GET /api/v1/tenant")
    page.reload()  # and on a full page load
    expect(page.locator("#usage-chart svg.main-svg").first).to_be_visible()


def test_staff_open_usage_and_drill_into_a_tenant(page, client, make, tenant_world):
    from tests.browser.test_admin_pages import _sign_in_staff

    for _ in range(3):
        client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {tenant_world['a']['token']}"})
    rollup.rollup_all()
    _sign_in_staff(page, make)
    page.click("nav >> text=Usage")
    page.wait_for_url("**/admin/usage/")
    expect(page.locator("#usage-month")).to_have_text("3")
    expect(page.locator("#usage-chart svg.main-svg").first).to_be_visible()
    page.click("#usage-top >> text=Tenant A")
    page.wait_for_url(f"**/admin/usage/{tenant_world['a']['tenant'].id}")
    expect(page.locator("h1")).to_have_text("Tenant A: usage")
    expect(page.locator("#usage-chart svg.main-svg").first).to_be_visible()
