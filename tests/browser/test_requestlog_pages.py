"""The request log in a real browser: a tenant member filters their log in place (htmx, no reload),
pages back and opens one request; staff filter every tenant's log by tenant and open a request."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.requestlog import drain
from tests.factories import Factories

pytestmark = pytest.mark.browser


def _calls(client, token: str, ok: int = 3, invalid: int = 2) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    ids = [client.get("/api/v1/tenant", headers=headers).headers["X-Request-ID"] for _ in range(ok)]
    for _ in range(invalid):
        assert client.get("/api/v1/members?limit=nonsense", headers=headers).status_code == 422
    drain.drain()
    return ids


def test_a_member_filters_the_log_and_opens_a_request(page, client, tenant_world):
    a = tenant_world["a"]
    _calls(client, a["token"])
    _calls(client, tenant_world["b"]["token"], ok=1, invalid=0)  # never shown to tenant A
    page.goto("/login")
    page.fill("#f-email", a["users"]["member"].email)
    page.fill("#f-password", Factories.PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/t/tenant-a/")
    page.click("nav >> text=Request log")
    page.wait_for_url("**/t/tenant-a/logs")
    expect(page.locator("h1")).to_have_text("Request log")
    rows = page.locator("#logs-table tbody tr")
    expect(rows).to_have_count(5)

    page.evaluate("window.__noReload = true")
    page.fill("#f-status", "4xx")  # filters as you type, swapping only the table
    page.wait_for_url("**/t/tenant-a/logs?*status=4xx*")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("422")
    page.select_option("#f-route", "GET /api/v1/tenant")
    expect(page.locator("#logs-table")).to_contain_text("No requests match")
    page.fill("#f-status", "")
    page.wait_for_url("**/t/tenant-a/logs?*route=GET*")
    expect(rows).to_have_count(3)
    assert page.evaluate("window.__noReload === true")

    request_id = rows.first.get_attribute("data-request-id")
    rows.first.locator("td a").first.click()
    page.wait_for_url(f"**/t/tenant-a/logs/{request_id}")
    card = page.locator(".request-entry")
    expect(card).to_contain_text(request_id)
    expect(card).to_contain_text("/api/v1/tenant")
    expect(card).to_contain_text(a["key"].name)
    page.click("text=requests with this key")
    page.wait_for_url(f"**/t/tenant-a/logs?key={a['key'].id}")
    expect(rows).to_have_count(5)

    page.goto("/t/tenant-b/logs")  # another tenant's log does not exist for this user
    expect(page.locator("h1")).to_contain_text("404")


def test_staff_filter_every_tenants_log_and_open_a_request(page, client, make, tenant_world):
    from tests.browser.test_admin_pages import _sign_in_staff

    _calls(client, tenant_world["a"]["token"], ok=2, invalid=0)
    b_ids = _calls(client, tenant_world["b"]["token"], ok=1, invalid=1)
    _sign_in_staff(page, make)
    page.click("nav >> text=Request log")
    page.wait_for_url("**/admin/logs/")
    rows = page.locator("#logs-table tbody tr")
    expect(rows).to_have_count(4)
    page.fill("#f-tenant", "tenant-b")
    page.wait_for_url("**/admin/logs/?*tenant=tenant-b*")
    expect(rows).to_have_count(2)
    page.fill("#f-tenant", "no-such-tenant")
    expect(page.locator("#logs-table")).to_contain_text("No tenant has the slug")
    page.fill("#f-tenant", "tenant-b")
    expect(rows).to_have_count(2)
    page.click(f"tr[data-request-id='{b_ids[0]}'] td a")
    page.wait_for_url(f"**/admin/logs/{b_ids[0]}")
    expect(page.locator(".request-entry")).to_contain_text("Tenant B")
    expect(page.locator(".request-entry")).to_contain_text("200")
