"""Every tenant-user page in a real browser, clicked through as a person would: sign-in, home, team,
API keys, audit trail and the account page, with their htmx forms, confirm dialogs and the same
flows with JavaScript turned off.

The `page` fixture fails a test on any JavaScript error. "No reload" is proven with a marker set on
`window` before an htmx request: a real navigation would drop it.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import Factories

pytestmark = pytest.mark.browser

PASSWORD = Factories.PASSWORD
HOME = "/t/tenant-a/"


def _sign_in(page, email: str, password: str = PASSWORD, path: str = "/login") -> None:
    page.goto(path)
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("button:has-text('Sign in')")


def _sign_in_as(page, world: dict, role: str) -> None:
    _sign_in(page, world["a"]["users"][role].email)
    page.wait_for_url(f"**{HOME}")


def _mark_document(page) -> None:
    """Tag the current document; `_same_document` is true only if no navigation replaced it."""
    page.evaluate("window.__noReload = true")


def _same_document(page) -> bool:
    return page.evaluate("window.__noReload === true")


def _answer_next_dialog(page, accept: bool) -> list[str]:
    """Accept or dismiss the next confirm dialog; the returned list receives its message."""
    seen: list[str] = []

    def handle(dialog) -> None:
        seen.append(dialog.message)
        if accept:
            dialog.accept()
        else:
            dialog.dismiss()

    page.once("dialog", handle)
    return seen


def _toast(page, text: str):
    return page.locator("#toasts .toast", has_text=text)


def _row(page, table: str, text: str):
    return page.locator(f"{table} tbody tr", has_text=text)


def test_owner_signs_in_and_walks_the_navigation(page, tenant_world):
    # A wrong password first: the error shows on the sign-in page.
    _sign_in(page, "owner@a.example.com", "not the password at all")
    expect(page.locator("#login-card .form-errors")).to_be_visible()
    assert "/login" in page.url

    _sign_in_as(page, tenant_world, "owner")
    expect(page.locator("h1")).to_have_text("Tenant A")
    expect(page.locator("#home-role .stat")).to_have_text("Owner")
    expect(page.locator("#home-plan")).to_contain_text("Plan")
    expect(page.locator("#home-status .stat")).to_have_text("Active")
    nav = page.locator("header nav")
    expect(nav.locator("a[aria-current=page]")).to_have_text("Home")

    _mark_document(page)
    nav.get_by_role("link", name="Team").click()
    page.wait_for_url("**/t/tenant-a/members")
    expect(page.locator("h1")).to_have_text("Team")
    expect(page.locator("#members-list")).to_contain_text("viewer@a.example.com")
    expect(page.locator("#members-list")).to_contain_text("(you)")
    expect(page.locator("#members-invitations")).to_contain_text("No pending invitations")
    expect(nav.locator("a[aria-current=page]")).to_have_text("Team")

    nav.get_by_role("link", name="API keys").click()
    page.wait_for_url("**/t/tenant-a/api-keys")
    expect(page.locator("h1")).to_have_text("API keys")
    expect(_row(page, "#keys-table", "test key")).to_have_count(1)
    expect(page.get_by_role("link", name="New API key")).to_be_visible()

    nav.get_by_role("link", name="Audit trail").click()
    page.wait_for_url("**/t/tenant-a/audit")
    expect(page.locator("h1")).to_have_text("Audit trail")
    expect(page.locator("#audit-table")).to_contain_text("member.added")
    expect(page.locator("#audit-table")).to_contain_text("api_key.created")

    nav.get_by_role("link", name="Home").click()
    page.wait_for_url(f"**{HOME}")
    expect(page.locator("h1")).to_have_text("Tenant A")
    assert _same_document(page), "the navigation is boosted: no full page load"

    # Back/forward through boosted history still shows the right page.
    page.go_back()
    page.wait_for_url("**/t/tenant-a/audit")
    expect(page.locator("h1")).to_have_text("Audit trail")

    # Tenant B is not ours: 404, never its data.
    response = page.goto("/t/tenant-b/")
    assert response.status == 404


def test_team_invite_revoke_change_role_and_keep_a_member(page, tenant_world):
    _sign_in_as(page, tenant_world, "owner")
    page.locator("header nav").get_by_role("link", name="Team").click()
    page.wait_for_url("**/t/tenant-a/members")
    invite = page.locator("#members-invite")

    # A bad address: the 422 re-render shows the field error in place.
    _mark_document(page)
    invite.locator("#f-email").fill("someone@localhost")
    invite.get_by_role("button", name="Create invitation").click()
    expect(invite.locator("#e-email")).to_be_visible()
    expect(invite.locator("#f-email")).to_have_attribute("aria-invalid", "true")
    expect(invite.locator("#f-email")).to_have_value("someone@localhost")
    assert _same_document(page)
    assert page.url.endswith("/t/tenant-a/members")

    # Someone already in the team: refused (409, not swapped), said in an error toast.
    invite.locator("#f-email").fill("member@a.example.com")
    invite.get_by_role("button", name="Create invitation").click()
    expect(page.locator("#toasts .toast-error", has_text="already a member")).to_be_visible()
    assert _same_document(page)

    # A good one: the one-time link, a toast, and the pending invitation in the list.
    invite.locator("#f-email").fill("New.Hire@Example.com")
    invite.locator("#f-role").select_option("admin")
    invite.get_by_role("button", name="Create invitation").click()
    expect(invite.locator("#invite-link")).to_contain_text("/invitations/")
    expect(invite.locator("#e-email")).to_have_count(0)
    expect(_toast(page, "Invitation for new.hire@example.com created.")).to_be_visible()
    pending = _row(page, "#members-invitations", "new.hire@example.com")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("admin")
    assert _same_document(page)

    # Revoke it: the confirm dialog names the address; accepted, the invitation is gone.
    seen = _answer_next_dialog(page, accept=True)
    pending.get_by_role("button", name="Revoke").click()
    expect(_toast(page, "The invitation for new.hire@example.com was revoked.")).to_be_visible()
    expect(page.locator("#members-invitations")).to_contain_text("No pending invitations")
    assert seen and "new.hire@example.com" in seen[0]

    # Change the member's role with the select and its button.
    member_row = _row(page, "#members-list", "member@a.example.com")
    member_row.locator("select[name=role]").select_option("admin")
    member_row.get_by_role("button", name="Change").click()
    expect(_toast(page, "member@a.example.com is now admin.")).to_be_visible()
    expect(_row(page, "#members-list", "member@a.example.com").locator("select[name=role]")).to_have_value("admin")

    # "Remove", then "Cancel" in the dialog: nothing is sent, the viewer stays.
    viewer_row = _row(page, "#members-list", "viewer@a.example.com")
    _mark_document(page)
    seen = _answer_next_dialog(page, accept=False)
    viewer_row.get_by_role("button", name="Remove").click()
    page.wait_for_timeout(300)
    assert seen and "viewer@a.example.com" in seen[0]
    assert _same_document(page), "a dismissed confirm must not submit"
    expect(viewer_row).to_have_count(1)
    page.reload()
    expect(_row(page, "#members-list", "viewer@a.example.com")).to_have_count(1)

    # Accepted, the same button removes them.
    _answer_next_dialog(page, accept=True)
    _row(page, "#members-list", "viewer@a.example.com").get_by_role("button", name="Remove").click()
    expect(_toast(page, "viewer@a.example.com was removed.")).to_be_visible()
    expect(_row(page, "#members-list", "viewer@a.example.com")).to_have_count(0)


def test_api_keys_create_once_roll_and_revoke(page, tenant_world):
    _sign_in_as(page, tenant_world, "owner")
    page.locator("header nav").get_by_role("link", name="API keys").click()
    page.wait_for_url("**/t/tenant-a/api-keys")
    page.get_by_role("link", name="New API key").click()
    page.wait_for_url("**/t/tenant-a/api-keys/new")
    expect(page.locator("h1")).to_have_text("New API key")

    # No scope chosen: the form comes back (422) with the error in place and the name kept.
    form = page.locator("#keys-form")
    _mark_document(page)
    form.locator("#f-name").fill("ci deploy")
    form.get_by_role("button", name="Create key").click()
    expect(page.locator("#keys-form #e-scopes")).to_be_visible()
    expect(page.locator("#keys-form #f-name")).to_have_value("ci deploy")
    assert _same_document(page)

    page.check("#keys-form input[name=scopes][value='usage:write']")
    page.locator("#keys-form").get_by_role("button", name="Create key").click()
    secret = page.locator("#keys-secret #new-key")
    expect(secret).to_have_text(re.compile(r"^\s*tnt_live_\S+\s*$"))
    first_key = secret.inner_text().strip()
    expect(page.locator("#keys-secret")).to_contain_text("usage:write")
    assert _same_document(page)

    # Back to the list: the key is not shown again, only its masked form.
    page.get_by_role("link", name=re.compile("back to API keys")).click()
    page.wait_for_url("**/t/tenant-a/api-keys")
    assert first_key not in page.content()
    row = _row(page, "#keys-table", "ci deploy")
    expect(row).to_have_count(1)
    masked = row.locator("td").nth(1).inner_text().strip()
    head, _, tail = masked.partition("…")
    assert head and tail and first_key.startswith(head) and first_key.endswith(tail), masked
    expect(row).to_contain_text("usage:write")
    expect(row.locator(".badge")).to_have_text("active")

    # Roll it with a 24-hour grace period: the new key is shown once, the old one keeps working.
    row.get_by_role("link", name="Roll…").click()
    page.wait_for_url("**/roll")
    expect(page.locator("h1")).to_contain_text("ci deploy")
    page.get_by_label("24 hours").check()
    _mark_document(page)
    seen = _answer_next_dialog(page, accept=True)
    page.get_by_role("button", name="Roll key").click()
    expect(page.locator("#keys-secret #new-key")).to_be_visible()
    rolled_key = page.locator("#new-key").inner_text().strip()
    assert rolled_key.startswith("tnt_live_") and rolled_key != first_key
    expect(page.locator("#keys-secret")).to_contain_text("keeps working until")
    assert seen and "ci deploy" in seen[0]
    assert _same_document(page)

    page.get_by_role("link", name=re.compile("back to API keys")).click()
    page.wait_for_url("**/t/tenant-a/api-keys")
    assert first_key not in page.content() and rolled_key not in page.content()
    expect(_row(page, "#keys-table", "ci deploy")).to_have_count(2)
    new_row = _row(page, "#keys-table", "rolled from an earlier key")
    expect(new_row).to_have_count(1)
    old_row = _row(page, "#keys-table", masked)
    expect(old_row.locator(".badge")).to_have_text("active")  # still inside its grace period

    # Revoke the old one: confirm, then its status reads "revoked" and it has no actions left.
    seen = _answer_next_dialog(page, accept=True)
    old_row.get_by_role("button", name="Revoke").click()
    expect(_toast(page, "was revoked")).to_be_visible()
    old_row = _row(page, "#keys-table", masked)
    expect(old_row.locator(".badge")).to_have_text("revoked")
    expect(old_row.get_by_role("button", name="Revoke")).to_have_count(0)
    expect(_row(page, "#keys-table", "rolled from an earlier key").locator(".badge")).to_have_text("active")
    assert seen and masked in seen[0]


def test_audit_trail_shows_filters_and_pages(page, tenant_world, make):
    tenant = tenant_world["a"]["tenant"]
    for n in range(55):  # more than one page (50) of api_key.* events
        make.api_key(tenant, scopes=["tenant:read"], name=f"bulk key {n:02d}")

    _sign_in_as(page, tenant_world, "owner")
    # Something done through the pages shows up too, newest first.
    page.locator("header nav").get_by_role("link", name="Team").click()
    page.wait_for_url("**/t/tenant-a/members")
    page.fill("#members-invite #f-email", "auditor@example.com")
    page.get_by_role("button", name="Create invitation").click()
    expect(page.locator("#invite-link")).to_be_visible()

    page.locator("header nav").get_by_role("link", name="Audit trail").click()
    page.wait_for_url("**/t/tenant-a/audit")
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("member.invited")
    expect(rows.first).to_contain_text("owner@a.example.com")
    expect(rows.first).to_contain_text("auditor@example.com")
    expect(page.locator("#audit-table")).to_contain_text("api_key.created")

    # Filter by action prefix: the table is swapped in place and the URL follows.
    _mark_document(page)
    page.fill("#f-action", "api_key.")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/t/tenant-a/audit\?.*action=api_key\."))
    expect(rows.filter(has_not_text="api_key.")).to_have_count(0)
    expect(rows).to_have_count(50)
    assert _same_document(page)
    newest_id = rows.first.get_attribute("id")

    # "Older →" goes on from the last row, keeping the filter.
    page.get_by_role("link", name="Older →").click()
    expect(page).to_have_url(re.compile(r"before=aud_"))
    assert "action=api_key." in page.url
    expect(page.locator("#f-action")).to_have_value("api_key.")
    expect(rows.filter(has_not_text="api_key.")).to_have_count(0)
    expect(rows).to_have_count(6)  # 55 bulk keys + tenant_world's own key, 50 on the first page
    assert newest_id not in {rows.nth(i).get_attribute("id") for i in range(6)}
    expect(page.get_by_role("link", name="Older →")).to_have_count(0)
    page.get_by_role("link", name="← Newest").click()
    expect(rows.first).to_have_attribute("id", newest_id)

    # A filter that matches nothing says so; bad input shows the error instead of a table.
    page.fill("#f-action", "nothing.like.this")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-table")).to_contain_text("No events match")
    page.fill("#f-since", "2030-01-02")
    page.fill("#f-until", "2030-01-01")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-table .form-errors")).to_contain_text("before")


def test_account_password_change_and_sign_out_everywhere(page, tenant_world):
    page.clock.install()  # time runs as usual, but the test can skip ahead (toasts fade after 6 s)
    _sign_in_as(page, tenant_world, "owner")
    page.locator("header .who").get_by_role("link", name="owner@a.example.com").click()
    page.wait_for_url("**/account")
    expect(page.locator("h1")).to_have_text("Your account")
    expect(page.locator("main")).to_contain_text("this session")

    # Mismatched confirmation: the error appears in place.
    form = page.locator("#password-form")
    _mark_document(page)
    form.locator("#f-current_password").fill(PASSWORD)
    form.locator("#f-new_password").fill("a brand new passphrase")
    form.locator("#f-new_password_confirm").fill("a different passphrase")
    form.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-form #e-new_password_confirm")).to_contain_text("do not match")
    assert _same_document(page)

    form = page.locator("#password-form")
    form.locator("#f-current_password").fill(PASSWORD)
    form.locator("#f-new_password").fill("a brand new passphrase")
    form.locator("#f-new_password_confirm").fill("a brand new passphrase")
    form.get_by_role("button", name="Change password").click()
    expect(_toast(page, "Password changed.")).to_be_visible()
    expect(page.locator("#password-form .error")).to_have_count(0)
    assert page.url.endswith("/account")
    # The page came in through htmx (HX-Location), and its toast still fades.
    page.clock.run_for(7_000)
    expect(_toast(page, "Password changed.")).to_have_count(0)

    # Sign out everywhere (after the confirm): back on /login, and the tenant asks to sign in.
    seen = _answer_next_dialog(page, accept=True)
    page.get_by_role("button", name="Sign out everywhere").click()
    page.wait_for_url("**/login")
    expect(_toast(page, "Signed out of")).to_be_visible()
    assert seen and "End every session" in seen[0]
    page.goto(HOME)
    page.wait_for_url(re.compile(r"/login"))
    expect(page.locator("h1")).to_have_text("Sign in")

    # The old password no longer works; the new one does, and `next` brings us back.
    page.fill("#f-email", "owner@a.example.com")
    page.fill("#f-password", PASSWORD)
    page.click("button:has-text('Sign in')")
    expect(page.locator("#login-card .form-errors")).to_be_visible()
    page.fill("#f-password", "a brand new passphrase")
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"**{HOME}")
    expect(page.locator("h1")).to_have_text("Tenant A")


def test_viewer_sees_no_write_controls(page, tenant_world):
    _sign_in_as(page, tenant_world, "viewer")
    expect(page.locator("#home-role .stat")).to_have_text("Viewer")
    nav = page.locator("header nav")
    expect(nav.get_by_role("link", name="Audit trail")).to_have_count(0)

    nav.get_by_role("link", name="Team").click()
    page.wait_for_url("**/t/tenant-a/members")
    expect(page.locator("#members-list")).to_contain_text("owner@a.example.com")
    expect(page.locator("#members-invite")).to_have_count(0)
    expect(page.get_by_role("button", name="Create invitation")).to_have_count(0)
    expect(page.get_by_role("button", name="Remove")).to_have_count(0)
    expect(page.locator("#members-list select")).to_have_count(0)
    expect(_row(page, "#members-list", "viewer@a.example.com").get_by_role("button", name="Leave")).to_have_count(1)

    nav.get_by_role("link", name="API keys").click()
    page.wait_for_url("**/t/tenant-a/api-keys")
    expect(_row(page, "#keys-table", "test key")).to_have_count(1)
    expect(page.get_by_role("link", name="New API key")).to_have_count(0)
    expect(page.get_by_role("link", name="Roll…")).to_have_count(0)
    expect(page.get_by_role("button", name="Revoke")).to_have_count(0)

    # Typing the URLs does not help.
    assert page.goto("/t/tenant-a/api-keys/new").status == 403
    assert page.goto("/t/tenant-a/audit").status == 403


def test_pages_work_without_javascript(browser, live_server, tenant_world):
    context = browser.new_context(base_url=live_server, java_script_enabled=False)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        _sign_in_as(page, tenant_world, "owner")
        expect(page.locator("h1")).to_have_text("Tenant A")

        page.locator("header nav").get_by_role("link", name="Team").click()
        page.wait_for_url("**/t/tenant-a/members")
        page.fill("#f-email", "nojs@example.com")
        page.click("button:has-text('Create invitation')")
        expect(page.locator("#invite-link")).to_contain_text("/invitations/")
        expect(_row(page, "#members-invitations", "nojs@example.com")).to_have_count(1)
        expect(page.locator("h1")).to_have_text("Team")

        page.locator("header nav").get_by_role("link", name="API keys").click()
        page.wait_for_url("**/t/tenant-a/api-keys")
        page.get_by_role("link", name="New API key").click()
        page.wait_for_url("**/api-keys/new")
        page.fill("#f-name", "plain form key")
        page.click("button:has-text('Create key')")  # no scope: the whole page comes back with the error
        expect(page.locator("#e-scopes")).to_be_visible()
        expect(page.locator("h1")).to_have_text("New API key")
        page.check("input[name=scopes][value='tenant:read']")
        page.click("button:has-text('Create key')")
        expect(page.locator("h1")).to_have_text("API key created")
        key = page.locator("#new-key").inner_text().strip()
        assert key.startswith("tnt_live_")

        page.get_by_role("link", name=re.compile("back to API keys")).click()
        page.wait_for_url("**/t/tenant-a/api-keys")
        assert key not in page.content()
        row = _row(page, "#keys-table", "plain form key")
        row.get_by_role("button", name="Revoke").click()  # no script, so no confirm: a plain POST
        page.wait_for_url("**/t/tenant-a/api-keys")
        expect(_row(page, "#keys-table", "plain form key").locator(".badge")).to_have_text("revoked")
        expect(_toast(page, "was revoked")).to_be_visible()

        page.locator("header .who").get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/login")
    finally:
        context.close()
