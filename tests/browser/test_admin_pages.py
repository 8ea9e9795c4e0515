"""Staff pages in a real browser: live search and filters swap only the table, boosted paging and
sorting, htmx forms that re-render with errors then land on the next page, confirmations, toasts."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import totp_code
from tests.factories import Factories


def _sign_in_staff(page, make) -> None:
    staff = make.staff("ops-browser@example.com")
    page.goto("/admin/login")
    page.fill("#f-email", staff.email)
    page.fill("#f-password", Factories.PASSWORD)
    page.click("button:has-text('Sign in')")
    enter_code(page, staff.email)
    page.wait_for_url("**/admin/")


def enter_code(page, email: str) -> None:
    """The second sign-in step for a user enrolled with the factories' TOTP secret."""
    page.wait_for_url("**/login/two-factor")
    page.fill("#f-code", totp_code(email))
    page.click("button:has-text('Verify')")


def test_tenant_list_filters_pages_and_sorts_in_place(page, make):
    make.tenant(slug="alpha", name="Alpha", plan="free", tags=["beta"])
    make.tenant(slug="bravo", name="Bravo", plan="pro", tags=["vip"])
    for n in range(26):
        make.tenant(slug=f"z-{n:02d}", name=f"Zed {n:02d}", plan="free")
    _sign_in_staff(page, make)
    page.click("nav >> text=Tenants")
    page.wait_for_url("**/admin/tenants/")
    rows = page.locator("#tenants-table tbody tr")

    page.fill("#f-q", "bravo")  # searches as you type
    expect(page).to_have_url(re.compile(r"q=bravo"))
    expect(rows).to_have_count(1)
    expect(page.locator("h1")).to_have_text("Tenants")
    page.fill("#f-q", "")
    page.select_option("#f-tag", "beta")
    expect(page).to_have_url(re.compile(r"tag=beta"))
    expect(rows).to_have_count(1)
    page.select_option("#f-tag", "")
    expect(rows).to_have_count(25)

    page.click("#tenants-table >> text=Next →")
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(rows).to_have_count(3)
    expect(page.locator("nav.nav")).to_have_count(1)  # the table was swapped, not the page nested
    page.click("#tenants-table >> a.sort:has-text('Name')")
    expect(page).to_have_url(re.compile(r"sort=-name"))
    expect(rows.first).to_contain_text("Zed 25")
    rows.first.locator("a").first.click()  # a tenant's link leaves the list for its page
    expect(page.locator("h1")).to_contain_text("Zed 25")
    expect(page.locator("#members")).to_be_visible()


def test_plan_form_errors_then_success_then_archive(page, make):
    make.plans()
    _sign_in_staff(page, make)
    page.goto("/admin/plans/new")
    page.fill("#f-code", "growth")
    page.fill("#f-name", "Growth")
    page.fill("#f-price_monthly", "49.001")
    page.click("button:has-text('Create plan')")
    expect(page.locator("#e-price_monthly")).to_contain_text("2 decimal places")
    expect(page.locator("#f-name")).to_have_value("Growth")
    page.fill("#f-price_monthly", "49")
    page.fill("#f-api_calls_included", "1000")
    page.fill("#f-api_calls_overage", "0.001")
    page.click("button:has-text('Create plan')")
    page.wait_for_url("**/admin/plans/")
    expect(page.locator("#plan-growth")).to_contain_text("$49.00")
    expect(page.locator("#plan-growth")).to_contain_text("0.001 USD")
    expect(page.locator(".toast")).to_have_count(1)
    expect(page.locator(".toast")).to_contain_text("Plan Growth created.")

    page.once("dialog", lambda dialog: dialog.dismiss())  # asking first: "no" changes nothing
    page.locator("#plan-growth button:has-text('Archive')").click()
    expect(page.locator("#plan-growth")).not_to_contain_text("archived")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#plan-growth button:has-text('Archive')").click()
    expect(page.locator("#plan-growth")).to_contain_text("archived")


def test_audit_filters_and_bad_dates(page, make):
    make.plans()
    _sign_in_staff(page, make)
    page.goto("/admin/audit/?since=nope")
    expect(page.locator("#audit-table")).to_contain_text("Use a date like")
    page.goto("/admin/audit/")
    page.fill("#f-action", "plan.")  # filters as you type
    expect(page).to_have_url(re.compile(r"action=plan\."))
    expect(page.locator("#audit-table tbody tr")).to_have_count(3)
    page.select_option("#f-outcome", "denied")
    expect(page.locator("#audit-table")).to_contain_text("No events match these filters")
    page.select_option("#f-outcome", "")
    expect(page.locator("#audit-table tbody tr")).to_have_count(3)
    page.wait_for_load_state("networkidle")
    page.locator("#audit-table tbody tr").first.locator("a").first.click()
    expect(page.locator("#audit-event")).to_contain_text("Previous hash")


def test_staff_form_re_renders_with_errors(page, make):
    _sign_in_staff(page, make)
    page.click("nav >> text=Staff")
    page.wait_for_url("**/admin/staff/")
    page.fill("#f-email", "new-ops@example.com")
    page.fill("#f-password", "short")
    page.fill("#f-password_confirm", "short")
    page.click("button:has-text('Create staff account')")
    expect(page.locator("#e-password")).to_contain_text("at least 12")
    expect(page.locator("#f-email")).to_have_value("new-ops@example.com")
    page.fill("#f-password", "a long enough password")
    page.fill("#f-password_confirm", "a long enough password")
    page.click("button:has-text('Create staff account')")
    expect(page.locator("#staff-table")).to_contain_text("new-ops@example.com")
