"""The staff revenue page in a real browser: opened from the admin navigation, the Plotly charts drawn under
the CSP, another month chosen with the selector, and Recompute pressed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from app import clock
from app.billing import metrics, subscriptions
from app.security import Actor

pytestmark = pytest.mark.browser
SYSTEM = Actor.system("tests")


def test_staff_open_revenue_change_the_month_and_recompute(page, make):
    from tests.browser.test_admin_pages import _sign_in_staff

    now = clock.now()
    acme, globex = make.tenant(name="Acme", slug="acme"), make.tenant(name="Globex", slug="globex")
    with clock.travel(now - timedelta(days=70)):
        subscriptions.create(SYSTEM, acme.id, "enterprise", trial=False)
    with clock.travel(now - timedelta(days=35)):
        subscriptions.create(SYSTEM, globex.id, "pro", trial=False)
    metrics.rebuild_all()
    current, earlier = metrics.first_of(now), metrics.add_months(metrics.first_of(now), -1)

    _sign_in_staff(page, make)
    page.click("nav >> text=Revenue")  # a boosted navigation: the charts are drawn after the swap
    page.wait_for_url("**/admin/revenue")
    expect(page.locator("h1")).to_have_text("Revenue")
    expect(page.locator("#revenue-month")).to_contain_text(f"{current:%B %Y} · USD")
    expect(page.locator("#revenue-mrr")).to_have_text("$549.00")
    expect(page.locator("#revenue-mrr-chart svg.main-svg").first).to_be_visible()
    expect(page.locator("#revenue-movements-chart svg.main-svg").first).to_be_visible()
    expect(page.locator("#revenue-top")).to_contain_text("Acme")

    page.select_option("#f-month", earlier.strftime("%Y-%m"))
    page.click("#revenue-select button:has-text('Show')")
    page.wait_for_url(f"**/admin/revenue?month={earlier:%Y-%m}*")
    expect(page.locator("#revenue-month")).to_contain_text(f"{earlier:%B %Y} · USD")
    expect(page.locator("#revenue-mrr-chart svg.main-svg").first).to_be_visible()

    page.click("button:has-text('Recompute')")
    page.wait_for_url(f"**/admin/revenue?month={earlier:%Y-%m}*")
    expect(page.locator(".toast")).to_contain_text(f"Revenue for {earlier:%B %Y} recomputed (1 currency).")
    expect(page.locator("#revenue-month")).to_contain_text(f"{earlier:%B %Y} · USD")
    expect(page.locator("#revenue-movements-chart svg.main-svg").first).to_be_visible()
