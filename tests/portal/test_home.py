"""The tenant home page: plan, limits, status, your role; access; leaving."""

from __future__ import annotations

from app.tenancy.models import Membership
from tests.conftest import client_for


def test_every_role_sees_the_plan_and_its_own_role(as_role):
    for role in ("owner", "admin", "member", "viewer"):
        page = as_role(role).get("/t/tenant-a/")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "Tenant A" in html
        assert "Pro" in html and "$49.00 per month" in html and "$490.00 per year" in html
        assert "100,000 included per month" in html
        assert "50 per second" in html and "1,000 per minute" in html
        assert role.capitalize() in html
        assert "Active" in html


def test_what_the_role_allows_and_links_follow_permissions(as_role):
    owner = as_role("owner").get("/t/tenant-a/").get_data(as_text=True)
    assert "billing:write" in owner
    assert "/t/tenant-a/audit" in owner and "/t/tenant-a/api-keys/new" in owner

    viewer = as_role("viewer").get("/t/tenant-a/").get_data(as_text=True)
    assert "Read-only access" in viewer
    assert "billing:write" not in viewer and "keys:write" not in viewer
    assert "/t/tenant-a/audit" not in viewer  # no audit:read, so no link in the nav or the page
    assert "/t/tenant-a/api-keys/new" not in viewer
    assert "/t/tenant-a/api-keys" in viewer


def test_unlimited_plan_says_so(app, make):
    tenant = make.tenant(slug="big-co", plan="enterprise")
    user = make.user()
    make.member(tenant, "viewer", user)
    html = client_for(app, make, user).get("/t/big-co/").get_data(as_text=True)
    assert "Enterprise" in html and "$500.00 per month" in html
    assert "Unlimited" in html and "unlimited members" in html


def test_suspended_tenant_shows_why(app, make):
    from app.tenancy import service

    tenant = make.tenant(slug="paused-co")
    user = make.user()
    make.member(tenant, "owner", user)
    service.set_status(make.system, tenant.id, "suspended", "Unpaid invoice")
    html = client_for(app, make, user).get("/t/paused-co/").get_data(as_text=True)
    assert "Suspended" in html and "Unpaid invoice" in html and "refused" in html


def test_non_members_get_404_and_signed_out_people_sign_in(as_role, client):
    assert as_role("owner").get("/t/tenant-b/").status_code == 404
    assert as_role("owner").get("/t/no-such-tenant/").status_code == 404
    response = client.get("/t/tenant-a/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_member_can_leave(as_role, tenant_world, fresh):
    client = as_role("viewer")
    response = client.form("/t/tenant-a/leave")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert client.get("/t/tenant-a/").status_code == 404
    viewer = tenant_world["a"]["users"]["viewer"]
    assert fresh(Membership, user_id=viewer.id) == []


def test_the_last_owner_cannot_leave(as_role, tenant_world, fresh):
    client = as_role("owner")
    response = client.form("/t/tenant-a/leave")
    assert response.status_code == 409
    assert "at least one owner" in response.get_data(as_text=True)
    owner = tenant_world["a"]["users"]["owner"]
    assert [m.role for m in fresh(Membership, user_id=owner.id)] == ["owner"]
    assert client.get("/t/tenant-a/").status_code == 200


def test_leave_needs_a_csrf_token(as_role):
    assert as_role("viewer").post("/t/tenant-a/leave").status_code == 400
