"""Bulk actions, exports and imports in a real browser, with a real RQ worker run from the test: staff
filter the tenant list, check two tenants, suspend them after confirming and watch the job page finish
without reloading; export the filtered list and download the CSV; import a file whose dry run names the
bad line, then a good one, and import it for real."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.tenancy.models import Tenant
from tests.admin.test_staffjobs import run_jobs
from tests.browser.test_admin_pages import _sign_in_staff
from tests.browser.test_portal_pages import _answer_next_dialog

pytestmark = pytest.mark.browser


def _status(slug: str) -> str | None:
    return db.session.scalar(select(Tenant.status).where(Tenant.slug == slug).execution_options(
        populate_existing=True))


def test_bulk_suspend_from_the_tenant_list_with_progress(page, live_server, make):
    for slug in ("bulk-one", "bulk-two", "bulk-three"):
        make.tenant(slug=slug, name=slug.replace("-", " ").title())
    make.tenant(slug="keep-me", name="Keep Me")
    _sign_in_staff(page, make)
    page.click("nav >> text=Tenants")
    page.wait_for_url("**/admin/tenants/")
    page.fill("#f-q", "bulk-")
    expect(page.locator("#tenants-table tbody tr")).to_have_count(3)
    expect(page.locator("#export-tenants")).to_contain_text("Export the 3 tenants")
    page.check("input[aria-label='Select Bulk One']")
    page.check("input[aria-label='Select Bulk Two']")
    page.select_option("#f-action", "suspend")
    page.fill("#f-bulk-reason", "unpaid invoices")
    seen = _answer_next_dialog(page, accept=True)
    page.click("button:has-text('Apply to selected')")
    page.wait_for_url("**/admin/jobs/job_*")
    assert seen and "Each tenant's change is audited" in seen[0]
    expect(page.locator("#job-status")).to_have_attribute("data-status", "queued")
    page.evaluate("window.__noReload = true")
    run_jobs()
    expect(page.locator("#job-status")).to_have_attribute("data-status", "succeeded")  # polled, not reloaded
    expect(page.locator("#job-counts")).to_contain_text("2 of 2")
    assert page.evaluate("window.__noReload") is True
    assert [_status(s) for s in ("bulk-one", "bulk-two", "bulk-three")] == ["suspended", "suspended", "active"]

    page.click("nav >> text=Tenants")
    page.wait_for_url("**/admin/tenants/")  # (and settled: typing into a filter htmx has not bound is lost)
    page.fill("#f-q", "bulk-")
    expect(page.locator("#tenants-table tbody tr")).to_have_count(3)
    page.click("#export-tenants")
    page.wait_for_url("**/admin/jobs/?dataset=tenants*")
    expect(page.locator("#export-filters")).to_contain_text("q=bulk-")
    page.click("button:has-text('Start export')")
    page.wait_for_url("**/admin/jobs/job_*")
    run_jobs()
    expect(page.locator("#job-download")).to_be_visible()
    with page.expect_download() as info:
        page.click("#job-download")
    with open(info.value.path(), encoding="utf-8") as downloaded:
        content = downloaded.read()
    assert content.splitlines()[0].startswith("id,slug,name,status")
    assert sorted(line.split(",")[1] for line in content.splitlines()[1:]) == ["bulk-one", "bulk-three", "bulk-two"]


def test_import_dry_run_names_bad_lines_then_imports_for_real(page, live_server, make, tmp_path):
    make.tenant(slug="already-here")
    _sign_in_staff(page, make)
    page.click("nav >> text=Jobs")
    page.wait_for_url("**/admin/jobs/")
    expect(page.locator("#jobs")).to_contain_text("No jobs yet")
    bad = tmp_path / "tenants.csv"
    bad.write_text("name,slug,plan\nFresh Co,fresh-co,pro\nDup,already-here,free\n", encoding="utf-8")
    page.set_input_files("#f-file", str(bad))
    page.click("button:has-text('Check the file')")
    page.wait_for_url("**/admin/jobs/job_*")
    run_jobs()
    expect(page.locator("#job-errors")).to_contain_text("Another tenant has this slug")
    expect(page.locator("#job-errors tbody tr td").first).to_have_text("3")
    expect(page.locator("#job-verdict")).to_contain_text("Fix the rows below")

    page.click("text=← Jobs")
    good = tmp_path / "tenants.json"
    good.write_text('[{"name": "Fresh Co", "slug": "fresh-co", "plan": "pro"}]', encoding="utf-8")
    page.set_input_files("#f-file", str(good))
    page.click("button:has-text('Check the file')")
    page.wait_for_url("**/admin/jobs/job_*")
    run_jobs()
    expect(page.locator("#job-verdict")).to_contain_text("Every row is valid")
    assert _status("fresh-co") is None
    seen = _answer_next_dialog(page, accept=True)
    page.click("button:has-text('Import for real')")
    page.wait_for_url("**/admin/jobs/job_*")
    assert seen and "All are written, or none" in seen[0]
    run_jobs()
    expect(page.locator("#job-status")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#job-summary")).to_contain_text("rows")
    assert _status("fresh-co") == "active"
