"""Every staff page: staff get it, signed-out people go to the staff sign-in, tenant users get 404."""

from __future__ import annotations

import pytest

from app.audit.models import AuditEvent
from app.extensions import db
from tests.admin.helpers import fresh, text


@pytest.fixture
def urls(make):
    tenant = make.tenant(slug="acme")
    event = db.session.query(AuditEvent).first()
    staff = make.staff("other-staff@example.com")
    return {
        "get": ["/admin/", "/admin/tenants/", "/admin/tenants/new", f"/admin/tenants/{tenant.id}",
                f"/admin/tenants/{tenant.id}/edit", "/admin/plans/", "/admin/plans/new",
                f"/admin/plans/{tenant.plan_id}/edit", "/admin/staff/", "/admin/audit/", f"/admin/audit/{event.id}"],
        "post": [f"/admin/tenants/{tenant.id}/suspend", f"/admin/tenants/{tenant.id}/close",
                 f"/admin/plans/{tenant.plan_id}/archive", f"/admin/staff/{staff.id}/disable", "/admin/tenants/new"],
        "tenant": tenant, "staff": staff,
    }


def test_staff_get_every_page(staff_client, urls):
    for url in urls["get"]:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        assert "Tenantry" in text(response) and staff_client.user.email in text(response)


def test_signed_out_people_are_sent_to_the_staff_sign_in(client, urls):
    for url in urls["get"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/admin/login?next="), url


def test_htmx_requests_signed_out_get_an_hx_redirect(client, urls):
    response = client.htmx_get("/admin/tenants/")
    assert response.headers["HX-Redirect"].startswith("/admin/login")


def test_tenant_users_do_not_see_the_console(as_role, urls):
    owner = as_role("owner")
    for url in urls["get"]:
        assert owner.get(url).status_code == 404, url


def test_tenant_users_cannot_act_through_the_console(as_role, urls):
    owner = as_role("owner")
    for url in urls["post"]:
        assert owner.form(url, {"reason": "x", "name": "Hijack", "slug": "hijack"}).status_code == 404, url
    fresh()
    tenant, staff = urls["tenant"], urls["staff"]
    db.session.refresh(tenant)
    db.session.refresh(staff)
    assert tenant.status == "active"
    assert tenant.plan.archived_at is None
    assert staff.disabled_at is None


def test_unknown_and_malformed_ids_are_404(staff_client, make):
    make.plans()
    for url in ["/admin/tenants/ten_01jzzzzzzzzzzzzzzzzzzzzzzz", "/admin/tenants/nonsense",
                "/admin/tenants/../etc/edit", "/admin/tenants/ten_x/edit",
                "/admin/plans/plan_nope/edit", "/admin/plans/ten_01jzzzzzzzzzzzzzzzzzzzzzzz/edit",
                "/admin/audit/aud_01jzzzzzzzzzzzzzzzzzzzzzzz", "/admin/audit/%27%20or%201=1"]:
        assert staff_client.get(url).status_code == 404, url
    for url in ["/admin/tenants/ten_nope/suspend", "/admin/plans/plan_nope/archive",
                "/admin/staff/usr_nope/disable", "/admin/staff/usr_nope/sign-out-everywhere"]:
        assert staff_client.form(url, {"reason": "x"}).status_code == 404, url
