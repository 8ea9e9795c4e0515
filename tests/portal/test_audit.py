"""The tenant's own audit trail: who sees it, filters, bad input, readable changes, keyset pages."""

from __future__ import annotations

import re

from app.audit import service as audit
from app.extensions import db
from app.security import Actor
from app.tenancy import queries as tenancy_queries
from tests.portal.conftest import assert_denied

ROW_RE = re.compile(r'<tr id="(aud_[0-9a-z]+)"')


def _rows(response) -> list[str]:
    return ROW_RE.findall(response.get_data(as_text=True))


def test_owner_and_admin_read_the_trail_others_get_403(as_role, tenant_world, audit_events):
    for role in ("owner", "admin"):
        page = as_role(role).get("/t/tenant-a/audit")
        assert page.status_code == 200
        assert "member.added" in page.get_data(as_text=True)
    for role in ("member", "viewer"):
        assert as_role(role).get("/t/tenant-a/audit").status_code == 403
    assert_denied(audit_events, tenant_world["a"]["tenant"], "audit:read", "/t/tenant-a/audit")
    assert as_role("owner", "b").get("/t/tenant-a/audit").status_code == 404


def test_only_this_tenants_events_show(as_role, make, tenant_world):
    make.api_key(tenant_world["b"]["tenant"], name="b-only-key")
    html = as_role("owner").get("/t/tenant-a/audit").get_data(as_text=True)
    assert "b-only-key" not in html and "b.example.com" not in html
    assert "a.example.com" in html


def test_changes_read_as_old_and_new(as_role, tenant_world):
    owner = as_role("owner")
    member_row = next(m for m in tenancy_queries.members(tenant_world["a"]["tenant"].id) if m.role == "viewer")
    owner.form(f"/t/tenant-a/members/{member_row.id}/role", {"role": "member"})
    html = owner.get("/t/tenant-a/audit?action=member.role_changed").get_data(as_text=True)
    assert "member.role_changed" in html
    assert "<code>role</code>: viewer → member" in html
    assert "owner@a.example.com" in html  # the actor


def test_filters(as_role, tenant_world):
    owner = as_role("owner")
    as_role("viewer").get("/t/tenant-a/audit")  # a denial to find
    keys = owner.get("/t/tenant-a/audit?action=api_key.").get_data(as_text=True)
    assert "api_key.created" in keys and "member.added" not in keys
    denied = owner.get("/t/tenant-a/audit?outcome=denied").get_data(as_text=True)
    assert "access.denied" in denied and "member.added" not in denied and "viewer@a.example.com" in denied
    by_actor = owner.get("/t/tenant-a/audit?actor=viewer@a").get_data(as_text=True)
    assert "access.denied" in by_actor and "api_key.created" not in by_actor
    today = owner.get("/t/tenant-a/audit?since=2000-01-01&until=2999-12-31")
    assert today.status_code == 200 and "member.added" in today.get_data(as_text=True)
    none = owner.get("/t/tenant-a/audit?until=2000-01-01").get_data(as_text=True)
    assert "No events match" in none and "Clear filters" in none


def test_bad_filters_say_what_is_wrong(as_role):
    owner = as_role("owner")
    bad = owner.get("/t/tenant-a/audit?since=31/12/2024")
    assert bad.status_code == 422
    assert "Use a date like 2025-01-31" in bad.get_data(as_text=True)
    backwards = owner.get("/t/tenant-a/audit?since=2025-02-01&until=2025-01-01")
    assert backwards.status_code == 422 and "before" in backwards.get_data(as_text=True)
    outcome = owner.get("/t/tenant-a/audit?outcome=maybe")
    assert outcome.status_code == 422 and "Choose one of" in outcome.get_data(as_text=True)
    assert owner.get("/t/tenant-a/audit?before=garbage").status_code == 200  # a bad cursor is the first page


def test_htmx_filtering_returns_only_the_table(as_role):
    response = as_role("owner").htmx_get("/t/tenant-a/audit?action=api_key.")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<section id="audit-table">') and "api_key.created" in html
    bad = as_role("owner").htmx_get("/t/tenant-a/audit?until=nope")
    assert bad.status_code == 422 and "<html" not in bad.get_data(as_text=True)


def test_older_pages_by_keyset(as_role, tenant_world):
    tenant = tenant_world["a"]["tenant"]
    actor = Actor.system("pager")
    for n in range(60):
        audit.record(actor, "test.event", tenant_id=tenant.id, metadata={"n": n})
    db.session.commit()
    owner = as_role("owner")
    first = owner.get("/t/tenant-a/audit?action=test.")
    first_rows = _rows(first)
    assert len(first_rows) == 50 and first_rows == sorted(first_rows, reverse=True)  # newest first
    match = re.search(r'href="([^"]*before=[^"]*)"[^>]*>Older', first.get_data(as_text=True))
    assert match, "no Older link"
    older = owner.get(match.group(1).replace("&amp;", "&"))
    older_rows = _rows(older)
    assert len(older_rows) == 10 and not set(older_rows) & set(first_rows)
    assert max(older_rows) < min(first_rows)
    assert "action=test." in match.group(1) and "Newest" in older.get_data(as_text=True)
    assert "Older" not in older.get_data(as_text=True)
