"""The staff rate-limit page in a real browser: a key that keeps going over its limit is blocked,
shows up with its refusals, and staff lift the block after confirming."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from app.plans import service as plans_service
from app.plans.queries import find_plan
from app.ratelimit import blocks
from app.security import Actor
from tests.browser.test_admin_pages import _sign_in_staff

pytestmark = pytest.mark.browser


def _call(base: str, token: str) -> int:
    request = urllib.request.Request(f"{base}/api/v1/tenant", headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the local test server
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_staff_see_a_blocked_key_and_lift_the_block(page, live_server, app, make, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_BLOCK_AFTER", 3)
    plans_service.ensure_default_plans(Actor.system("tests"))
    plans_service.update_plan(Actor.system("tests"), find_plan("free").id, {"rate_limit_per_second": 1})
    tenant = make.tenant(name="Noisy Neighbour", plan="free")
    _key, token = make.api_key(tenant, scopes=["tenant:read"], name="hammer")
    assert [_call(live_server, token) for _ in range(5)][-1] == 429
    blocks.flush_violations()

    _sign_in_staff(page, make)
    page.click("nav >> text=Rate limits")
    page.wait_for_url("**/admin/ratelimits/")
    expect(page.locator("h1")).to_have_text("Rate limits")
    expect(page.locator("#active-blocks")).to_contain_text("Noisy Neighbour")
    expect(page.locator("#active-blocks")).to_contain_text("hammer")
    expect(page.locator("#violations")).to_contain_text("Noisy Neighbour")

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#active-blocks button:has-text('Lift')")
    expect(page.locator("#active-blocks")).to_contain_text("hammer")  # dismissed: nothing happened

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#active-blocks button:has-text('Lift')")
    expect(page.locator("#toasts")).to_contain_text("lifted")
    expect(page.locator("#active-blocks")).to_contain_text("No key is blocked")
    expect(page.locator("#recent-blocks")).to_contain_text("lifted")


def test_staff_override_a_tenants_limits_and_exempt_an_ip(page, live_server, make):
    plans_service.ensure_default_plans(Actor.system("tests"))
    tenant = make.tenant(name="Launch Day Ltd", plan="free")
    _sign_in_staff(page, make)
    page.goto(f"{live_server}/admin/ratelimits/")
    expect(page.locator("#overrides")).to_contain_text("No overrides")

    page.click("#overrides summary")
    page.fill("#override-form [name=tenant]", "launch-day-typo")
    page.fill("#override-form [name=per_second]", "250")
    page.fill("#override-form [name=reason]", "launch week")
    page.click("#override-form button[type=submit]")
    expect(page.locator("#override-form .form-errors")).to_be_visible()
    expect(page.locator("#override-form")).to_contain_text("No tenant has this id or slug")
    expect(page.locator("#override-form [name=per_second]")).to_have_value("250")  # kept
    page.fill("#override-form [name=tenant]", tenant.slug)
    page.select_option("#override-form [name=minute_strategy]", "sliding-window")
    page.fill("#override-form [name=per_minute]", "6000")
    page.fill("#override-form [name=reason]", "launch week")
    page.click("#override-form button[type=submit]")
    expect(page.locator("#toasts")).to_contain_text("overridden")
    row = page.locator("#overrides tbody tr")
    expect(row).to_contain_text("Launch Day Ltd")
    expect(row).to_contain_text("250")
    expect(row).to_contain_text("sliding-window")

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button:has-text('Remove')").click()
    expect(page.locator("#toasts")).to_contain_text("plan's limits apply again")
    expect(page.locator("#overrides")).to_contain_text("No overrides")

    page.click("#exemptions summary")
    page.select_option("#exemption-form [name=kind]", "ip")
    page.fill("#exemption-form [name=value]", "203.0.113.7/24")
    page.fill("#exemption-form [name=exemption_reason]", "uptime monitor")
    page.click("#exemption-form button[type=submit]")
    expect(page.locator("#exemptions tbody")).to_contain_text("203.0.113.0/24")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#exemptions button:has-text('Remove')")
    expect(page.locator("#exemptions tbody")).to_contain_text("203.0.113.0/24")  # dismissed
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#exemptions button:has-text('Remove')")
    expect(page.locator("#exemptions")).to_contain_text("No exemptions")
