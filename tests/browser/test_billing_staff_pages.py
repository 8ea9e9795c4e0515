"""Staff billing pages in a real browser: staff open Invoices from the navigation, narrow the list to one
tenant, open an unpaid invoice and record its payment after confirming, then grant the tenant credit
from its billing page, where the form names a bad amount first."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.billing import invoices, subscriptions
from app.billing.invoice_models import Invoice
from app.extensions import db
from app.security import Actor
from tests.browser.test_admin_pages import _sign_in_staff
from tests.browser.test_portal_pages import _answer_next_dialog

pytestmark = pytest.mark.browser


def test_staff_filter_invoices_mark_one_paid_and_grant_credit(page, live_server, make):
    system = Actor.system("tests")
    acme, other = make.tenant(name="Acme Paying", slug="acme-paying"), make.tenant(name="Other Co")
    for tenant in (acme, other):
        subscriptions.create(system, tenant.id, "pro", trial=False)
        draft = db.session.scalar(select(Invoice).where(Invoice.tenant_id == tenant.id))
        invoices.finalize(system, draft.id)
    number = db.session.scalar(select(Invoice.number).where(Invoice.tenant_id == acme.id))

    _sign_in_staff(page, make)
    page.click("nav >> text=Invoices")
    page.wait_for_url("**/admin/billing/")
    expect(page.locator("#invoices-table tbody tr")).to_have_count(2)
    expect(page.locator("#dunning")).to_contain_text("retrying")  # no card, no credit: both in dunning
    page.fill("#f-tenant", "acme-paying")
    page.press("#f-tenant", "Enter")
    expect(page.locator("#invoices-table tbody tr")).to_have_count(1)
    expect(page.locator("#invoices-table")).to_contain_text("Acme Paying")

    page.click(f"#invoices-table >> text={number}")
    expect(page.locator("h1")).to_have_text(f"Invoice {number}")
    page.fill("input[name=reference]", "wire 2026-11-23")
    seen = _answer_next_dialog(page, accept=True)
    page.click("button:has-text('Mark paid')")
    assert seen and f"Record {number} as paid" in seen[0]
    expect(page.locator("#invoice-status")).to_contain_text("paid")
    expect(page.locator("#invoice-due")).to_have_text("$0.00")

    page.click("#staff-actions >> text=Acme Paying")
    page.wait_for_url("**/admin/billing/tenants/*")
    expect(page.locator("#credit-balance")).to_contain_text("No credit.")
    page.fill("#f-amount", "-3")
    page.click("button:has-text('Grant')")
    expect(page.locator("#e-amount")).to_contain_text("more than zero")
    page.fill("#f-amount", "40")
    page.fill("#f-note", "sorry for the outage")
    page.click("button:has-text('Grant')")
    expect(page.locator(".toast")).to_contain_text("$40.00 of credit granted to Acme Paying")
    expect(page.locator("#credit-balance")).to_contain_text("$40.00")


def test_staff_create_a_coupon_and_a_tax_rate(page, live_server, make):
    _sign_in_staff(page, make)
    page.click("nav >> text=Invoices")
    page.click("text=Coupons and tax")
    page.wait_for_url("**/admin/billing/catalog")
    expect(page.locator("#coupons")).to_contain_text("No coupons yet")
    page.fill("#coupon-form #f-name", "Launch")
    page.fill("#coupon-form #f-code", "launch20")
    page.fill("#coupon-form #f-value", "120")
    page.click("button:has-text('Create coupon')")
    expect(page.locator("#coupon-form #e-value")).to_contain_text("at most 100")
    page.fill("#coupon-form #f-value", "20")
    page.click("button:has-text('Create coupon')")
    expect(page.locator(".toast")).to_contain_text("Coupon LAUNCH20 created")
    expect(page.locator("#coupons-table")).to_contain_text("20%")

    page.fill("#rate-form #f-country", "DE")
    page.fill("#rate-form #f-name", "VAT")
    page.fill("#rate-form #f-percentage", "19")
    page.click("button:has-text('Create tax rate')")
    expect(page.locator("#rates-table")).to_contain_text("19%")
    seen = _answer_next_dialog(page, accept=True)
    page.click("#rates-table button:has-text('Switch off')")
    assert seen and "Stop applying VAT" in seen[0]
    expect(page.locator("#rates-table")).to_contain_text("off")
    seen = _answer_next_dialog(page, accept=True)
    page.click("#coupons-table button:has-text('Archive')")
    expect(page.locator("#coupons-table")).to_contain_text("archived")
