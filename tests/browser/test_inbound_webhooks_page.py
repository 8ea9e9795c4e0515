"""The staff webhooks page in a real browser: Stripe events arrive at /webhooks/stripe (one genuine event
whose handler fails, one forged request), staff open Webhooks from the nav, see the counts and the failed
event, filter the events in place, and re-process the event after confirming."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from app.webhooks import inbound
from tests.browser.test_admin_pages import _sign_in_staff
from tests.webhooks.inbound_helpers import SECRET, run_jobs, stripe_event, stripe_signature

pytestmark = pytest.mark.browser


def _post(base: str, body: str, signature: str) -> int:
    request = urllib.request.Request(f"{base}/webhooks/stripe", data=body.encode(), method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json", "Stripe-Signature": signature})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the local test server
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_staff_see_inbound_counts_and_re_process_a_failed_event(page, live_server, app, make, monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", SECRET)

    def no_tenant(event):
        raise LookupError("no tenant for customer cus_42")

    monkeypatch.setitem(inbound.HANDLERS, "invoice.payment_failed", no_tenant)
    body = stripe_event("evt_1BrowserFailed", "invoice.payment_failed")
    assert _post(live_server, body, stripe_signature(body)) == 200
    assert _post(live_server, body, stripe_signature(body)) == 200  # a replay
    assert _post(live_server, body, stripe_signature(body, secret="whsec_not_ours")) == 400
    run_jobs()  # the handler fails (and once more on RQ's immediate retry)

    _sign_in_staff(page, make)
    page.click("nav >> text=Webhooks")
    page.wait_for_url("**/admin/webhooks/")
    expect(page.locator("h1")).to_have_text("Webhooks")
    expect(page.locator("#inbound h2")).to_have_text("Inbound")
    expect(page.locator("#inbound-stripe-url")).to_contain_text("/webhooks/stripe")
    total = page.locator("#inbound-counts-total th")
    expect(total).to_have_text(["Total", "1", "1", "1", "0", "0"])  # accepted, duplicate, signature failed, …
    row = page.locator("#inbound-events tr[data-status='failed']")
    expect(row).to_contain_text("invoice.payment_failed")
    expect(row).to_contain_text("evt_1BrowserFailed")
    expect(row).to_contain_text("LookupError: no tenant for customer cus_42")

    page.select_option("#f-status", "processed")  # filters in place
    expect(page.locator("#inbound-events")).to_contain_text("No processed events")
    expect(page).to_have_url(re.compile(r"status=processed"))
    page.select_option("#f-status", "failed")
    expect(row).to_contain_text("evt_1BrowserFailed")

    monkeypatch.setitem(inbound.HANDLERS, "invoice.payment_failed", lambda event: None)  # billing fixed
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.locator("button:has-text('Re-process')").click()
    expect(row).to_contain_text("LookupError")  # dismissed: nothing happened

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button:has-text('Re-process')").click()
    expect(page.locator("#toasts")).to_contain_text("queued to be processed again")
    run_jobs()
    page.reload()
    processed = page.locator("#inbound-events tr[data-status='processed']")
    expect(processed).to_contain_text("evt_1BrowserFailed")
    expect(page.locator("#inbound-events button:has-text('Re-process')")).to_have_count(0)
