"""Staff flag pages in a real browser: staff open Flags from the navigation, create a flag (the form names
a bad default first), switch it on from the list without a page load (HTMX swaps the row), open it, save
rules that fail validation and then pass, evaluate it for a tenant, and archive it after confirming."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_admin_pages import _sign_in_staff
from tests.browser.test_portal_pages import _answer_next_dialog

pytestmark = pytest.mark.browser


def test_staff_create_toggle_edit_rules_and_evaluate_a_flag(page, live_server, make):
    tenant = make.tenant(name="Acme Flagged", slug="acme-flagged")
    _sign_in_staff(page, make)
    page.click("nav >> text=Flags")
    page.wait_for_url("**/admin/flags")
    expect(page.locator("#flags")).to_contain_text("No flags yet")

    page.fill("#flag-form #f-key", "new-checkout")
    page.select_option("#flag-form #f-type", "number")
    page.fill("#flag-form #f-default_value", "ten")
    page.fill("#flag-form #f-tags", "checkout, beta")
    page.click("button:has-text('Create flag')")
    expect(page.locator("#flag-form #e-default_value")).to_contain_text("A number")
    expect(page.locator("#flag-form #f-tags")).to_have_value("checkout, beta")
    page.fill("#flag-form #f-default_value", "10")
    page.click("button:has-text('Create flag')")
    page.wait_for_url("**/admin/flags/new-checkout")
    expect(page.locator(".toast")).to_contain_text("Flag new-checkout created")

    page.click("nav >> text=Flags")
    page.wait_for_url("**/admin/flags")
    row = page.locator("#flag-new-checkout")
    expect(row.locator(".flag-state")).to_have_text("off")
    page.evaluate("window.__noReload = true")
    row.locator("button:has-text('Switch on')").click()
    expect(page.locator("#flag-new-checkout .flag-state")).to_have_text("on")
    expect(page.locator("#flag-new-checkout button.toggle")).to_have_text("Switch off")
    assert page.evaluate("window.__noReload") is True  # the row was swapped, the page not loaded again

    page.click("#flag-new-checkout >> text=new-checkout")
    page.wait_for_url("**/admin/flags/new-checkout")
    page.fill("#f-rules", '[{"type": "tenants", "tenant_ids": ["%s"], "value": 50},'
                          ' {"type": "rollout", "percentage": 120, "value": 20}]' % tenant.id)
    page.click("button:has-text('Save rules')")
    expect(page.locator("#rules-errors")).to_contain_text("rules[1].percentage")
    expect(page.locator("#f-rules")).to_have_value(
        '[{"type": "tenants", "tenant_ids": ["%s"], "value": 50}, {"type": "rollout", "percentage": 120, "value": 20}]'
        % tenant.id)
    page.fill("#f-rules", '[{"type": "tenants", "tenant_ids": ["%s"], "value": 50},'
                          ' {"type": "rollout", "percentage": 20, "value": 20}]' % tenant.id)
    page.click("button:has-text('Save rules')")
    expect(page.locator(".toast")).to_contain_text("Rules of new-checkout saved")
    expect(page.locator("#rules-errors")).to_have_count(0)

    page.fill("#f-tenant", "acme-flagged")
    page.click("button:has-text('Evaluate')")
    expect(page.locator("#evaluation-result")).to_contain_text("Acme Flagged")
    expect(page.locator("#evaluation-result .eval-value")).to_have_text("50")
    expect(page.locator("#evaluation-result")).to_contain_text("TARGETING_MATCH")
    expect(page.locator("#history")).to_contain_text("flag.updated")

    seen = _answer_next_dialog(page, accept=True)
    page.click("#flag-actions button:has-text('Archive')")
    expect(page.locator(".toast")).to_contain_text("new-checkout archived")
    assert seen and "Archive new-checkout?" in seen[0]
    expect(page.locator("#flag-actions")).to_contain_text("Restore")


def test_staff_override_a_flag_for_one_tenant_from_its_page(page, live_server, make):
    from app.flags import service
    from app.flags.snapshot import holder
    from app.security import Actor

    tenant = make.tenant(name="Override Co", slug="override-co")
    service.create_flag(Actor.system("tests"), {"key": "new-dashboard", "type": "boolean", "default_value": False,
                                                "enabled": True})
    holder.refresh()
    _sign_in_staff(page, make)
    page.goto(f"{live_server}/admin/tenants/{tenant.id}")
    row = page.locator("#tenant-flag-new-dashboard")
    expect(row).to_contain_text("false")
    row.locator("select[name=value]").select_option("true")
    row.locator("button:has-text('Override')").click()
    expect(page.locator(".toast")).to_contain_text("new-dashboard is true for this tenant now")
    row = page.locator("#tenant-flag-new-dashboard")
    expect(row).to_contain_text("overridden")
    expect(row).to_contain_text("true")
    seen = _answer_next_dialog(page, accept=True)
    row.locator("button:has-text('Remove')").click()
    assert seen and "Remove Override Co's override of new-dashboard" in seen[0]
    expect(page.locator("#tenant-flag-new-dashboard")).not_to_contain_text("overridden")
