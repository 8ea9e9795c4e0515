"""The foundation journey in a real browser: staff creates a tenant, its owner joins, makes an API
key and calls the API with it."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.browser.test_admin_pages import enter_code
from tests.factories import Factories

pytestmark = pytest.mark.browser


def _sign_in(page, path: str, email: str, password: str) -> None:
    page.goto(path)
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("button:has-text('Sign in')")


def _sign_out(page) -> None:
    page.click("button:has-text('Sign out')")
    page.wait_for_url("**/login**")


def test_staff_creates_tenant_owner_joins_makes_key_and_calls_api(page, live_server, make):
    make.plans()
    staff = make.staff("ops@example.com")

    _sign_in(page, "/admin/login", staff.email, Factories.PASSWORD)
    enter_code(page, staff.email)
    page.wait_for_url("**/admin/")
    page.click("nav >> text=Tenants")
    page.wait_for_url("**/admin/tenants/")
    page.goto("/admin/tenants/new")
    page.fill("#f-name", "Browser Test Co")
    page.fill("#f-slug", "browser-co")
    page.fill("#f-owner_email", "founder@browser-co.example.com")
    page.click("button:has-text('Create tenant')")
    link = page.locator("#invite-link-url").inner_text().strip()
    assert "/invitations/" in link
    assert page.locator("h1").first.inner_text().startswith("Browser Test Co")
    _sign_out(page)

    # The owner opens the invitation link, creates the account and lands in the tenant.
    page.goto(link)
    page.fill("#f-name", "Fran Founder")
    page.fill("#f-password", "a long enough password")
    page.fill("#f-password_confirm", "a long enough password")
    page.click("button:has-text('Create account and join')")
    page.wait_for_url("**/t/browser-co/")
    _sign_out(page)

    # …and signs in like any tenant user.
    _sign_in(page, "/login", "founder@browser-co.example.com", "a long enough password")
    page.wait_for_url("**/t/browser-co/")
    page.click("nav >> text=API keys")
    page.wait_for_url("**/t/browser-co/api-keys")
    page.goto("/t/browser-co/api-keys/new")
    page.fill("#f-name", "from the browser test")
    page.check("input[name=scopes][value='tenant:read']")
    page.click("button:has-text('Create key')")
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("tnt_live_")

    request = urllib.request.Request(  # noqa: S310 - the local test server
        f"{live_server}/api/v1/tenant", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the local test server
        body = json.loads(response.read())
    assert body["slug"] == "browser-co"
    assert body["name"] == "Browser Test Co"

    # The key is shown once: the list shows only its masked form.
    page.goto("/t/browser-co/api-keys")
    assert key not in page.content()
    assert "from the browser test" in page.content()
