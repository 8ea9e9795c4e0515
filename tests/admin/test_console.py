"""The staff home: tenant counts by status and plan, staff count, latest audit events, links."""

from __future__ import annotations

import re

from app.tenancy import service as tenancy_service
from tests.admin.helpers import text


def counts(page: str, attribute: str) -> dict[str, int]:
    return {k: int(v.replace(",", "")) for k, v in re.findall(rf'data-{attribute}="([a-z_-]+)">([\d,]+)<', page)}


def test_counts_by_status_and_plan(staff_client, make):
    make.tenant(slug="t-one", plan="free")
    make.tenant(slug="t-two", plan="pro")
    suspended = make.tenant(slug="t-three", plan="pro")
    tenancy_service.set_status(make.system, suspended.id, "suspended", "unpaid")
    make.staff()
    page = text(staff_client.get("/admin/"))
    assert counts(page, "status") == {"active": 2, "suspended": 1, "closed": 0}
    assert counts(page, "plan") == {"free": 1, "pro": 2, "enterprise": 0}
    assert re.search(r'id="console-staff">.*?<p class="stat">2</p>', page, re.S)


def test_latest_ten_audit_events_newest_first(staff_client, make):
    for n in range(12):
        make.tenant(slug=f"t-{n:02d}")
    page = text(staff_client.get("/admin/"))
    table = page[page.index('id="console-audit"'):]
    assert table.count("<tr>") == 11  # header + 10 events
    assert table.index(">t-11</a>") < table.index(">t-10</a>")
    assert ">t-01</a>" not in table


def test_links_to_every_section(staff_client, make):
    page = text(staff_client.get("/admin/"))
    for url in ("/admin/tenants/", "/admin/plans/", "/admin/audit/", "/admin/staff/", "/admin/tenants/new"):
        assert f'href="{url}' in page
    assert "Nothing has happened yet" in page or 'id="console-audit"' in page
