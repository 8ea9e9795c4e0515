"""Staff actions on one tenant: suspend, resume, close, invite and revoke invitations."""

from __future__ import annotations

import re

from app.extensions import db
from app.tenancy import members, queries
from tests.admin.helpers import audit_events, follow, fresh, text


class TestStatus:
    def test_suspend_resume_close(self, staff_client, make):
        tenant = make.tenant(slug="acme")
        url = f"/admin/tenants/{tenant.id}"
        detail = text(staff_client.get(url))
        assert 'data-confirm="Suspend' in detail and 'data-confirm="Close' in detail  # destructive: asks first
        page = text(follow(staff_client, staff_client.form(f"{url}/suspend", {"reason": "Unpaid invoices"})))
        assert "is suspended" in page and "Unpaid invoices" in page
        fresh()
        db.session.refresh(tenant)
        assert (tenant.status, tenant.status_reason) == ("suspended", "Unpaid invoices")
        [event] = audit_events("tenant.suspended", tenant_id=tenant.id)
        assert event.meta == {"reason": "Unpaid invoices"} and event.severity == "warning"

        follow(staff_client, staff_client.form(f"{url}/resume"))
        fresh()
        db.session.refresh(tenant)
        assert tenant.status == "active" and audit_events("tenant.resumed", tenant_id=tenant.id)

        follow(staff_client, staff_client.form(f"{url}/close", {"reason": "Asked to leave"}))
        fresh()
        db.session.refresh(tenant)
        assert tenant.status == "closed" and audit_events("tenant.closed", tenant_id=tenant.id)
        assert "Reopen" in text(staff_client.get(url))

    def test_too_long_a_reason_is_422_and_changes_nothing(self, staff_client, make):
        tenant = make.tenant(slug="acme")
        response = staff_client.form(f"/admin/tenants/{tenant.id}/suspend", {"reason": "x" * 301})
        assert response.status_code == 422 and "at most 300 characters" in text(response)
        fresh()
        db.session.refresh(tenant)
        assert tenant.status == "active" and audit_events("tenant.suspended") == []

    def test_suspending_twice_says_so(self, staff_client, make):
        tenant = make.tenant(slug="acme")
        staff_client.form(f"/admin/tenants/{tenant.id}/suspend", {"reason": "first"})
        page = text(follow(staff_client, staff_client.form(f"/admin/tenants/{tenant.id}/suspend", {"reason": "again"})))
        assert "already suspended" in page
        assert len(audit_events("tenant.suspended", tenant_id=tenant.id)) == 1


class TestInvite:
    def test_staff_invite_shows_the_link(self, staff_client, make):
        tenant = make.tenant(slug="acme")
        response = staff_client.form(f"/admin/tenants/{tenant.id}/invite", {"email": "new@example.com",
                                                                            "role": "admin"})
        page = text(follow(staff_client, response))
        assert re.search(r'id="invite-link-url">[^<]*/invitations/[^<]+<', page)
        fresh()
        [invitation] = queries.pending_invitations(tenant.id)
        assert (invitation.email, invitation.role) == ("new@example.com", "admin")
        assert audit_events("member.invited", tenant_id=tenant.id)

    def test_bad_invites_are_422_with_the_reason(self, staff_client, make):
        tenant = make.tenant(slug="acme")
        member = make.member(tenant, "member", make.user("in@example.com"))
        taken = staff_client.form(f"/admin/tenants/{tenant.id}/invite", {"email": member.user.email, "role": "viewer"})
        assert taken.status_code == 422 and "Already a member." in text(taken)
        bad = staff_client.form(f"/admin/tenants/{tenant.id}/invite", {"email": "nope", "role": "viewer"})
        assert bad.status_code == 422 and 'value="nope"' in text(bad)
        role = staff_client.form(f"/admin/tenants/{tenant.id}/invite", {"email": "x@example.com", "role": "god"})
        assert role.status_code == 422 and "Role is one of" in text(role)
        fresh()
        assert queries.pending_invitations(tenant.id) == []

    def test_revoke_invitation(self, staff_client, make):
        tenant = make.tenant(slug="acme")
        invitation, _ = members.invite(make.system, tenant.id, "new@example.com", "member")
        url = f"/admin/tenants/{tenant.id}/invitations/{invitation.id}/revoke"
        page = text(follow(staff_client, staff_client.form(url)))
        assert "Invitation revoked." in page
        fresh()
        assert queries.pending_invitations(tenant.id) == []
        assert audit_events("member.invitation_revoked", tenant_id=tenant.id)
        other = make.tenant(slug="other")
        assert staff_client.form(f"/admin/tenants/{other.id}/invitations/{invitation.id}/revoke").status_code == 404
