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
    make.tenant(name="Acme Flagged", slug="acme-flagged")
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
    # The structured editor: add an override and a rollout, fail validation, fix it, save.
    expect(page.locator("#rules-editor")).to_contain_text("No rules")
    page.click("#add-rule button:has-text('Tenants (overrides)')")
    expect(page.locator("#rule-0")).to_contain_text("1. Tenants (overrides)")
    page.fill("#r0-tenants", "nobody-at-all")
    page.fill("#r0-value", "50")
    page.click("#add-rule button:has-text('Percentage rollout')")
    expect(page.locator("#rule-1")).to_contain_text("2. Percentage rollout")
    expect(page.locator("#r0-tenants")).to_have_value("nobody-at-all")  # typed text survives the redraw
    page.fill("#r1-percentage", "35")
    expect(page.locator("#r1-percentage-out")).to_have_text("35")
    page.fill("#r1-value", "twenty")
    page.click("#save-rules")
    expect(page.locator("#rules-errors")).to_contain_text("rules[0].tenant_ids")
    expect(page.locator("#rule-0 .error")).to_contain_text("No tenant nobody-at-all")
    expect(page.locator("#rule-1 .error")).to_contain_text("A number")
    page.fill("#r0-tenants", "acme-flagged")
    page.fill("#r1-value", "20")
    page.click("#rule-1 button[aria-label='Move rule 2 up']")
    expect(page.locator("#rule-0")).to_contain_text("1. Percentage rollout")
    page.click("#rule-0 button[aria-label='Move rule 1 down']")
    expect(page.locator("#rule-1")).to_contain_text("2. Percentage rollout")
    page.click("#save-rules")
    expect(page.locator(".toast")).to_contain_text("Rules of new-checkout saved")
    expect(page.locator("#rules-errors")).to_have_count(0)
    expect(page.locator("#rule-0")).to_contain_text("Acme Flagged (acme-flagged)")
    expect(page.locator("#r1-percentage-out")).to_have_text("35")
    page.click("#rules-json summary")
    expect(page.locator("#f-rules")).to_contain_text('"percentage": 35')

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
