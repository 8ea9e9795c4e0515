"""Event types in a real browser: a tenant owner opens the page from the webhooks page, sees the catalogue
and the empty state for their own, is refused a bad name and bad JSON (each field says why, and what they
typed stays), fixes both and sees the type listed, deprecates it and deletes it, each after confirming."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_portal_pages import _answer_next_dialog, _sign_in_as, _toast
from tests.webhooks import outbound_helpers as helpers

pytestmark = pytest.mark.browser
webhook_env = helpers.webhook_env  # fixture


def test_an_owner_adds_deprecates_and_deletes_an_event_type(page, live_server, webhook_env, tenant_world):
    _sign_in_as(page, tenant_world, "owner")
    page.click("nav >> text=Webhooks")
    page.wait_for_url("**/t/tenant-a/webhooks")
    page.click("#event-types-link")
    page.wait_for_url("**/t/tenant-a/webhooks/event-types")
    expect(page.locator("h1")).to_have_text("Event types")
    expect(page.locator("#own-event-types .empty")).to_contain_text("No event types of your own yet")
    catalogue_row = page.locator("#event-type-member-added")
    expect(catalogue_row).to_contain_text("A person joined the tenant.")
    catalogue_row.locator("summary").click()
    expect(catalogue_row.locator("pre")).to_contain_text("alice@example.com")

    page.fill("#f-name", "Order Shipped")
    page.fill("#f-description", "An order left the warehouse.")
    page.fill("#f-example", '{"order_id": "ord_1",')
    page.click("button:has-text('Add event type')")
    expect(page.locator("#e-name")).to_contain_text("Lowercase words separated by dots")
    expect(page.locator("#e-example")).to_contain_text("Not valid JSON")
    expect(page.locator("#f-description")).to_have_value("An order left the warehouse.")
    expect(page.locator("#f-name")).to_have_value("Order Shipped")

    page.fill("#f-name", "order.shipped")
    page.fill("#f-example", '{"order_id": "ord_1", "carrier": "DHL"}')
    page.click("button:has-text('Add event type')")
    expect(_toast(page, "order.shipped was added")).to_be_visible()
    row = page.locator("#event-type-order-shipped")
    expect(row).to_contain_text("An order left the warehouse.")
    expect(page.locator("#own-event-types .empty")).to_have_count(0)
    expect(page.locator("#e-name")).to_have_count(0)
    row.locator("summary").click()
    expect(row.locator("pre")).to_contain_text('"carrier": "DHL"')

    seen = _answer_next_dialog(page, accept=True)
    row.locator("button:has-text('Deprecate')").click()
    expect(_toast(page, "order.shipped is deprecated")).to_be_visible()
    assert seen and "Deprecate order.shipped?" in seen[0]
    expect(row.locator(".badge")).to_have_text("deprecated")
    expect(row.locator("button:has-text('Undeprecate')")).to_be_visible()

    seen = _answer_next_dialog(page, accept=False)  # cancelled: still there
    row.locator("button:has-text('Delete')").click()
    assert seen and "Delete order.shipped?" in seen[0]
    expect(row).to_be_visible()
    seen = _answer_next_dialog(page, accept=True)
    row.locator("button:has-text('Delete')").click()
    expect(_toast(page, "order.shipped was deleted")).to_be_visible()
    expect(page.locator("#event-type-order-shipped")).to_have_count(0)
    expect(page.locator("#own-event-types .empty")).to_contain_text("No event types of your own yet")
