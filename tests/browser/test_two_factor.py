"""Two-factor sign-in in a real browser: a tenant user enrols from their account and signs in with a code;
new staff are sent to enrolment before the console opens."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import expect

from app import clock
from tests.factories import Factories

pytestmark = pytest.mark.browser


def _password(page, path: str, email: str) -> None:
    page.goto(path)
    page.fill("#f-email", email)
    page.fill("#f-password", Factories.PASSWORD)
    page.click("button:has-text('Sign in')")


def _scan(page) -> str:
    """What an authenticator app reads from the page: the secret (also in the QR code and the otpauth URI)."""
    expect(page.locator("#two-factor-setup svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    assert f"secret={secret}" in page.locator("#totp-uri").text_content()  # under "Setup link"
    return secret


def test_tenant_user_enrols_then_signs_in_with_a_code(page, make):
    tenant = make.tenant(slug="tenant-a", name="Tenant A")
    user = make.user("pat@example.com")
    make.member(tenant, "owner", user)

    _password(page, "/login", user.email)
    page.wait_for_url("**/t/tenant-a/")
    page.goto("/account")
    page.get_by_role("link", name="Manage two-factor sign-in").click()
    page.wait_for_url("**/account/two-factor")
    page.get_by_role("link", name="Set up two-factor sign-in").click()
    page.wait_for_url("**/account/two-factor/setup")
    secret = _scan(page)
    page.fill("#f-code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click("button:has-text('Turn on two-factor sign-in')")
    expect(page.locator("#e-code")).to_contain_text("That code is not right")
    page.fill("#f-code", pyotp.TOTP(secret).at(clock.now()))
    page.click("button:has-text('Turn on two-factor sign-in')")
    expect(page.locator("h1")).to_have_text("Two-factor sign-in is on")
    expect(page.locator("#recovery-code-list li")).to_have_count(10)
    page.get_by_role("link", name="I saved them, continue").click()
    page.wait_for_url("**/account/two-factor")
    expect(page.locator("#two-factor")).to_contain_text("10 unused recovery codes left")

    page.goto("/t/tenant-a/")
    page.locator("header .who").get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")

    _password(page, "/login", user.email)
    page.wait_for_url("**/login/two-factor")
    expect(page.locator("h1")).to_contain_text("your code")
    # the enrolment used this 30-second step's code, which never works twice: the app's next one does
    page.fill("#f-code", pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30)))
    page.click("button:has-text('Verify')")
    page.wait_for_url("**/t/tenant-a/")
    expect(page.locator("h1")).to_contain_text("Tenant A")


def test_new_staff_enrol_before_the_console_opens(page, make):
    staff = make.staff("new-ops@example.com", enrolled=False)
    _password(page, "/admin/login", staff.email)
    expect(page).to_have_url(re.compile(r"/account/two-factor/setup\?next=/admin/$"))
    expect(page.locator("#two-factor-setup")).to_contain_text("Staff accounts need a second factor")
    page.goto("/admin/tenants/")  # not before enrolling
    expect(page).to_have_url(re.compile(r"/account/two-factor/setup\?next=/admin/tenants/$"))
    secret = _scan(page)
    page.fill("#f-code", pyotp.TOTP(secret).at(clock.now()))
    page.click("button:has-text('Turn on two-factor sign-in')")
    expect(page.locator("#recovery-code-list li")).to_have_count(10)
    page.get_by_role("link", name="I saved them, continue").click()
    page.wait_for_url("**/admin/tenants/")
    expect(page.locator("h1")).to_have_text("Tenants")


def test_a_stale_session_confirms_the_password_before_a_new_api_key(page, make):
    tenant = make.tenant(slug="tenant-a", name="Tenant A")
    user = make.user("pat@example.com")
    make.member(tenant, "owner", user)
    _password(page, "/login", user.email)
    page.wait_for_url("**/t/tenant-a/")
    with clock.travel(clock.now() + timedelta(minutes=11)):
        page.goto("/t/tenant-a/api-keys")
        page.get_by_role("link", name="New API key").click()
        page.wait_for_url("**/account/confirm?next=/t/tenant-a/api-keys/new")
        page.fill("#f-password", "not the password")
        page.click("button:has-text('Confirm')")
        expect(page.locator("#e-password")).to_contain_text("That password is not correct.")
        page.fill("#f-password", Factories.PASSWORD)
        page.click("button:has-text('Confirm')")
        page.wait_for_url("**/t/tenant-a/api-keys/new")
        page.fill("#f-name", "after confirming")
        page.check("input[name=scopes][value='tenant:read']")
        page.click("button:has-text('Create key')")
        expect(page.locator("#new-key")).to_contain_text("tnt_live_")
