"""Staff impersonation ("view as"): staff see a tenant's pages as one of its members under a banner, with
that member's role deciding what is shown; read-only unless changes were allowed; started, refused changes
and the end are audited with the staff member as the actor."""

from __future__ import annotations

from sqlalchemy import select

from app.auth.models import ApiKey
from app.extensions import db
from tests.admin.helpers import audit_events, text


def _world(make):
    tenant = make.tenant(slug="viewed", name="Viewed Co")
    owner = make.user("owner@viewed.example")
    make.member(tenant, role="owner", user=owner)
    member = make.user("member@viewed.example")
    make.member(tenant, role="member", user=member)
    return tenant, owner, member


def test_view_as_a_member_read_only_with_a_banner_then_end(staff_client, make):
    tenant, _owner, member = _world(make)
    assert staff_client.get("/t/viewed/").status_code == 404  # staff are not members
    started = staff_client.form(f"/admin/tenants/{tenant.id}/view-as", {"user_id": member.id})
    assert started.status_code == 303 and started.headers["Location"].endswith("/t/viewed/")
    home = text(staff_client.get("/t/viewed/"))
    assert 'id="impersonation-banner"' in home and "member@viewed.example" in home and "read-only" in home
    assert staff_client.get("/t/viewed/audit").status_code == 403  # a member may not see the audit trail
    assert staff_client.get("/t/viewed/api-keys").status_code == 200
    refused = staff_client.form("/t/viewed/api-keys", {"name": "sneaky", "scopes": ["tenant:read"]})
    assert refused.status_code == 403  # a member may create keys, but this view is read-only
    assert db.session.scalar(select(ApiKey)) is None
    [event] = audit_events("impersonation.started")
    assert event.actor_type == "staff" and event.tenant_id == tenant.id and event.meta["read_only"] is True
    assert audit_events("impersonation.change_refused")
    ended = staff_client.form("/admin/tenants/view-as/end", {})
    assert ended.status_code == 303
    assert audit_events("impersonation.ended") and staff_client.get("/t/viewed/").status_code == 404


def test_view_as_with_changes_allowed_acts_as_staff_with_the_members_role(staff_client, make):
    tenant, owner, _member = _world(make)
    staff_client.form(f"/admin/tenants/{tenant.id}/view-as", {"user_id": owner.id, "allow_changes": "1"})
    assert "changes allowed" in text(staff_client.get("/t/viewed/"))
    response = staff_client.form("/t/viewed/members/invite", {"email": "new@viewed.example", "role": "member"})
    assert response.status_code in (200, 303)
    [invited] = audit_events("member.invited")
    assert invited.actor_type == "staff" and invited.actor_display.endswith("as owner@viewed.example")


def test_only_members_can_be_viewed_as_and_only_by_staff(staff_client, as_role, make):
    tenant, _owner, _member = _world(make)
    stranger = make.user("stranger@example.com")
    response = staff_client.form(f"/admin/tenants/{tenant.id}/view-as", {"user_id": stranger.id})
    assert response.status_code == 303 and not audit_events("impersonation.started")
    owner = as_role("owner")
    assert owner.form(f"/admin/tenants/{tenant.id}/view-as", {"user_id": stranger.id}).status_code == 404
