"""Browser: staff create a platform key (shown once), it works on the staff API, and they revoke it after
confirming."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.test_admin_pages import _sign_in_staff


def test_create_a_platform_key_and_revoke_it(page, make, live_server):
    _sign_in_staff(page, make)
    page.click("nav >> text=API keys")
    page.wait_for_url("**/admin/api-keys/")
    expect(page.locator("h1")).to_have_text("Platform API keys")
    expect(page.locator(".empty")).to_contain_text("No platform keys")

    page.fill("#f-name", "provisioning bot")
    page.click("button:has-text('Create platform key')")  # no scope: the error in place, the name kept
    expect(page.locator("#platform-key-form")).to_contain_text("Choose at least one scope")
    expect(page.locator("#f-name")).to_have_value("provisioning bot")
    page.check("input[value='admin:read']")
    page.check("input[value='admin:tenants:write']")
    page.click("button:has-text('Create platform key')")
    secret = page.locator("#new-key")
    expect(secret).to_have_text(re.compile(r"^tnt_plat_[0-9A-Za-z]{32}$"))
    plaintext = secret.inner_text()
    answer = page.request.get(f"{live_server}/api/v1/admin/tenants", headers={"Authorization": f"Bearer {plaintext}"})
    assert answer.status == 200

    page.click("text=I have copied it")
    page.wait_for_url("**/admin/api-keys/")
    row = page.locator("#platform-keys-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("provisioning bot")
    expect(row).to_contain_text("active")
    assert plaintext not in page.content()  # shown once only

    page.once("dialog", lambda dialog: dialog.dismiss())  # asking first: "no" changes nothing
    row.locator("button:has-text('Revoke')").click()
    expect(row).to_contain_text("active")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button:has-text('Revoke')").click()
    expect(page.locator("#platform-keys-table tbody tr")).to_contain_text("revoked")
    expect(page.locator("body")).to_contain_text("was revoked")
    expect(page.locator("#platform-keys-table button:has-text('Revoke')")).to_have_count(0)
    answer = page.request.get(f"{live_server}/api/v1/admin/tenants", headers={"Authorization": f"Bearer {plaintext}"})
    assert answer.status == 401
