"""The tenant billing page in a real browser: an owner finds Billing in the navigation, picks a bigger plan
and sees the proration before confirming, opens the invoice (printable, with its CSV), and cancels then
reactivates the subscription, each after confirming."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.billing import invoices, subscriptions
from app.billing.invoice_models import Invoice
from app.extensions import db
from app.security import Actor
from tests.browser.test_portal_pages import _answer_next_dialog, _sign_in_as

pytestmark = pytest.mark.browser


def test_an_owner_previews_and_confirms_an_upgrade_and_reads_the_invoice(page, live_server, tenant_world):
    tenant = tenant_world["a"]["tenant"]
    subscriptions.create(Actor.system("tests"), tenant.id, "pro", trial=False)
    draft = db.session.scalar(select(Invoice).where(Invoice.tenant_id == tenant.id))
    number = invoices.finalize(Actor.system("tests"), draft.id).number

    _sign_in_as(page, tenant_world, "owner")
    page.click("nav >> text=Billing")
    page.wait_for_url("**/t/tenant-a/billing")
    expect(page.locator("#sub-plan")).to_contain_text("Pro · monthly")
    expect(page.locator("#invoices-table")).to_contain_text(number)

    page.select_option("#f-plan", "enterprise")  # htmx asks for the preview on change
    expect(page.locator("#preview-summary")).to_contain_text("Upgrade now")
    expect(page.locator("#preview-lines")).to_contain_text("Unused time on Pro")
    expect(page.locator("#preview-net")).not_to_be_empty()
    page.click("button:has-text('Confirm the change')")
    expect(page.locator(".toast")).to_contain_text("You are on Enterprise (monthly) now")
    expect(page.locator("#sub-plan")).to_contain_text("Enterprise · monthly")

    page.click(f"#invoices-table >> text={number}")
    expect(page.locator("h1")).to_have_text(f"Invoice {number}")
    expect(page.locator("#invoice-lines")).to_contain_text("Pro")
    expect(page.locator("#invoice-total")).to_have_text("$49.00")
    expect(page.locator("#invoice-csv")).to_have_attribute("href", f"/t/tenant-a/billing/invoices/{draft.id}/csv")
    page.emulate_media(media="print")
    expect(page.locator("nav.no-print")).to_be_hidden()  # print CSS hides the buttons
    page.emulate_media(media="screen")
    page.click("text=← Back")
    page.wait_for_url("**/t/tenant-a/billing")

    seen = _answer_next_dialog(page, accept=True)
    page.click("button:has-text('Cancel subscription')")
    assert seen and "Cancel at the end of the period" in seen[0]
    expect(page.locator("#sub-status")).to_contain_text("ends")
    expect(page.locator("#upcoming")).to_contain_text("No further invoice")
    seen = _answer_next_dialog(page, accept=True)
    page.click("button:has-text('Reactivate')")
    expect(page.locator(".toast")).to_contain_text("Your subscription goes on")
    expect(page.locator("button:has-text('Cancel subscription')")).to_be_visible()
