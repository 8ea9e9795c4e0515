"""Usage metrics in a real browser: staff define a metric (an htmx form that re-renders with errors,
then lands on the list with a toast), rename it, see its definition fixed once events arrive, and archive
it after a confirmation; the tenant's usage page shows what was reported."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.usage import events, rollup
from tests.browser.test_admin_pages import _sign_in_staff
from tests.factories import Factories

pytestmark = pytest.mark.browser


def _report(client, token: str, count: int) -> None:
    batch = [{"id": f"evt-{i}", "metric": "emails_sent"} for i in range(count)]
    response = client.post("/api/v1/usage/events", json={"events": batch},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 202, response.get_data(as_text=True)


def test_staff_define_edit_and_archive_a_metric_and_the_tenant_sees_its_usage(page, browser, live_server, client,
                                                                              make, tenant_world):
    events.catalog.clear()
    _sign_in_staff(page, make)
    page.click("nav >> text=Usage")
    page.wait_for_url("**/admin/usage/")
    page.click("text=Metrics")
    page.wait_for_url("**/admin/usage/metrics")
    expect(page.locator("h1")).to_have_text("Usage metrics")
    expect(page.locator("main")).to_contain_text("No metrics yet")

    page.click("main >> text=New metric")
    page.wait_for_url("**/admin/usage/metrics/new")
    page.fill("#f-code", "Emails sent")
    page.fill("#f-name", "Emails sent")
    page.select_option("#f-aggregation", "sum")
    page.click("button:has-text('Create metric')")
    expect(page.locator("#e-code")).to_contain_text("a-z, 0-9 and _")
    expect(page.locator("#e-field")).to_contain_text("Name the event property to aggregate")
    expect(page.locator("#f-name")).to_have_value("Emails sent")  # what was typed stays
    expect(page.locator("nav.nav")).to_have_count(1)  # only the form was swapped
    page.fill("#f-code", "emails_sent")
    page.select_option("#f-aggregation", "count")
    page.click("button:has-text('Create metric')")
    page.wait_for_url("**/admin/usage/metrics")
    row = page.locator("#metric-emails_sent")
    expect(row).to_contain_text("Emails sent")
    expect(row).to_contain_text("Count of events")
    expect(page.locator(".toast")).to_contain_text("Metric Emails sent created.")

    row.locator("text=Edit").click()
    page.wait_for_url("**/edit")
    expect(page.locator("#metric-fixed")).to_have_count(0)  # no events yet: the definition may change
    page.fill("#f-name", "Emails delivered")
    page.fill("#f-unit", "emails")
    page.click("button:has-text('Save metric')")
    page.wait_for_url("**/admin/usage/metrics")
    expect(row).to_contain_text("Emails delivered")
    expect(row).to_contain_text("emails")

    _report(client, tenant_world["a"]["token"], 3)
    rollup.rollup_all()
    row.locator("text=Edit").click()
    page.wait_for_url("**/edit")
    expect(page.locator("#metric-fixed")).to_contain_text("fixed")
    expect(page.locator("#f-aggregation")).to_be_disabled()
    page.click("text=← All metrics")
    page.wait_for_url("**/admin/usage/metrics")

    page.once("dialog", lambda dialog: dialog.dismiss())  # asking first: "no" changes nothing
    row.locator("button:has-text('Archive')").click()
    expect(row).not_to_contain_text("archived")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button:has-text('Archive')").click()
    expect(row).to_contain_text("archived")
    expect(row.locator("button:has-text('Restore')")).to_be_visible()
    expect(page.locator(".toast").last).to_contain_text("new events for it are refused")

    tenant_page = browser.new_context(base_url=live_server).new_page()
    try:
        tenant_page.goto("/login")
        tenant_page.fill("#f-email", tenant_world["a"]["users"]["owner"].email)
        tenant_page.fill("#f-password", Factories.PASSWORD)
        tenant_page.click("button:has-text('Sign in')")
        tenant_page.wait_for_url("**/t/tenant-a/")
        tenant_page.click("nav >> text=Usage")
        tenant_page.wait_for_url("**/t/tenant-a/usage")
        metric = tenant_page.locator("#usage-metric-emails_sent")
        expect(metric).to_contain_text("Emails delivered")  # archived, but used this month: still shown
        expect(metric.locator(".used")).to_have_text("3 emails")
        expect(metric).to_contain_text("No quota")
    finally:
        tenant_page.context.close()
