"""The System page in a real browser: staff open it from the navigation, see the health report and a
failed job, retry it, then add an alert rule on the alert rules page; when the rule fires, the banner
shows on every staff page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_admin_pages import _sign_in_staff
from tests.ops.helpers import age_oldest, fail_a_job

pytestmark = pytest.mark.browser


def test_staff_retry_a_failed_job_and_see_an_alert_fire(page, live_server, make):
    from app.queue import get_queue

    job_id = fail_a_job("low", 3)
    _sign_in_staff(page, make)
    page.click("nav >> text=System")
    page.wait_for_url("**/admin/system/")
    expect(page.locator("#system-health")).to_contain_text("database:responseTime")
    expect(page.locator("#system-workers")).to_contain_text("No worker is running")
    row = page.locator(f'tr[data-job="{job_id}"]')
    expect(row).to_contain_text("boom 3")
    row.locator("button:has-text('Retry')").click()
    expect(page.locator(".toast")).to_contain_text("is queued again on low")
    expect(page.locator("#system-failed")).to_contain_text("No failed jobs")
    assert job_id in get_queue("low").get_job_ids()
    expect(page.locator('#system-queues tr[data-queue="low"] .depth')).to_have_text("1")
    expect(page.locator("#alert-banner")).to_have_count(0)

    age_oldest("billing", 600)
    page.click("a:has-text('Alert rules')")
    page.wait_for_url("**/admin/system/alerts")
    expect(page.locator("#alert-rules")).to_contain_text("No alert rules yet")
    page.fill("#f-name", "Jobs waiting")
    page.select_option("#f-kind", "queue_oldest_job")
    page.fill("#f-threshold", "")
    page.click("button:has-text('Add rule')")
    expect(page.locator("#alert-new")).to_contain_text("Seconds from 1 to 86400.")
    page.fill("#f-threshold", "300")
    page.click("button:has-text('Add rule')")
    expect(page.locator(".toast")).to_contain_text("Alert rule “Jobs waiting” created.")
    expect(page.locator("#alert-rules")).to_contain_text("Oldest queued job older than 300 s")

    page.click("button:has-text('Check rules now')")
    expect(page.locator("#alert-banner")).to_contain_text("Jobs waiting")
    expect(page.locator("#alert-history")).to_contain_text("queue billing")
    page.click("nav >> text=Tenants")
    page.wait_for_url("**/admin/tenants/")
    expect(page.locator("#alert-banner")).to_contain_text("1 alert firing")
