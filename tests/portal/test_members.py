"""The team page: members, invitations, roles, removal; the invitation link end to end."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from app import clock
from app.auth.models import User
from app.extensions import db
from app.tenancy.models import Invitation, Membership
from tests.portal.conftest import assert_denied

LINK_RE = re.compile(r"https?://[^\s<\"]+(/invitations/[A-Za-z0-9_-]+)")


def _membership(world, tenant: str, role: str) -> Membership:
    user = world[tenant]["users"][role]
    return db.session.scalar(select(Membership).where(Membership.user_id == user.id))


def _invite(client, email: str, role: str = "member", htmx: bool = False, slug: str = "tenant-a"):
    return client.form(f"/t/{slug}/members/invite", {"email": email, "role": role}, htmx=htmx)


def _link_path(response) -> str:
    match = LINK_RE.search(response.get_data(as_text=True))
    assert match, "no invitation link on the page"
    return match.group(1)


def test_every_role_sees_the_team(as_role):
    for role in ("owner", "admin", "member", "viewer"):
        html = as_role(role).get("/t/tenant-a/members").get_data(as_text=True)
        for email in ("owner@a.example.com", "admin@a.example.com", "member@a.example.com", "viewer@a.example.com"):
            assert email in html
        assert "b.example.com" not in html
        assert "(you)" in html


def test_controls_show_only_with_members_write(as_role):
    viewer = as_role("viewer").get("/t/tenant-a/members").get_data(as_text=True)
    assert "Invite someone" not in viewer and "Remove" not in viewer and "/role" not in viewer
    assert "Leave" in viewer  # anyone may leave
    owner = as_role("owner").get("/t/tenant-a/members").get_data(as_text=True)
    assert "Invite someone" in owner and "Remove" in owner and 'data-confirm="Remove' in owner
    admin = as_role("admin").get("/t/tenant-a/members").get_data(as_text=True)
    assert '<option value="owner"' not in admin  # an admin can't grant the owner role


def test_viewer_and_member_cannot_write_and_the_denial_is_audited(as_role, tenant_world, audit_events, fresh):
    world = tenant_world
    target = _membership(world, "a", "viewer").id
    for role in ("viewer", "member"):
        client = as_role(role)
        response = _invite(client, "someone@example.com")
        assert response.status_code == 403
        assert "members:write" in response.get_data(as_text=True)
        assert client.form(f"/t/tenant-a/members/{target}/role", {"role": "admin"}).status_code == 403
        assert client.form(f"/t/tenant-a/members/{target}/remove").status_code == 403
    assert_denied(audit_events, world["a"]["tenant"], "members:write", "/t/tenant-a/members/invite")
    assert_denied(audit_events, world["a"]["tenant"], "members:write", f"/t/tenant-a/members/{target}/remove")
    assert fresh(Invitation, email="someone@example.com") == []
    assert fresh(Membership, id=target)[0].role == "viewer"


def test_non_member_gets_404(as_role):
    assert as_role("owner", "b").get("/t/tenant-a/members").status_code == 404
    assert _invite(as_role("owner", "b"), "x@example.com").status_code == 404


def test_invitation_link_creates_an_account_once(as_role, app, fresh, tenant_world, audit_events):
    owner = as_role("owner")
    response = _invite(owner, "New.Person@Example.com", "admin")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "new.person@example.com" in html and "not shown again" in html and 'data-copy="#invite-link"' in html
    path = _link_path(response)
    # The token is not in the database, and the invitation is listed as pending.
    token = path.rsplit("/", 1)[1]
    assert fresh(Invitation, email="new.person@example.com")[0].token_hash != token
    listing = owner.get("/t/tenant-a/members").get_data(as_text=True)
    assert "new.person@example.com" in listing and path not in listing
    assert audit_events(tenant_world["a"]["tenant"].id, "member.invited")

    invitee = app.test_client()
    page = invitee.get(path)
    assert page.status_code == 200 and "Join Tenant A" in page.get_data(as_text=True)
    joined = invitee.form(path, {"name": "New Person", "password": "a long enough password",
                                 "password_confirm": "a long enough password"})
    assert joined.status_code == 303 and joined.headers["Location"] == "/t/tenant-a/"
    home = invitee.get("/t/tenant-a/").get_data(as_text=True)
    assert "Tenant A" in home and "Admin" in home
    assert fresh(User, email="new.person@example.com")[0].name == "New Person"

    # The link works once.
    again = app.test_client().get(path)
    assert again.status_code == 404 and "accepted" in again.get_data(as_text=True)
    assert "new.person@example.com" in owner.get("/t/tenant-a/members").get_data(as_text=True)


def test_invite_over_htmx_swaps_the_form_and_the_invitation_list(as_role):
    response = _invite(as_role("admin"), "htmx@example.com", htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert 'id="members-invite"' in html and 'id="members-invitations" hx-swap-oob="true"' in html
    assert "/invitations/" in html and "htmx@example.com" in html


def test_invalid_invite_rerenders_the_form(as_role, fresh):
    owner = as_role("owner")
    response = _invite(owner, "not-an-email")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "not-an-email" in html and "email" in html.lower() and 'class="error"' in html
    partial = _invite(owner, "not-an-email", htmx=True)
    assert partial.status_code == 422 and "<html" not in partial.get_data(as_text=True)
    assert _invite(owner, "ok@example.com", "superuser").status_code == 422
    assert fresh(Invitation) == []


def test_invite_refusals_say_why(as_role, fresh):
    forbidden = _invite(as_role("admin"), "boss@example.com", "owner")
    assert forbidden.status_code == 403 and "Only an owner" in forbidden.get_data(as_text=True)
    existing = _invite(as_role("owner"), "member@a.example.com")
    assert existing.status_code == 409 and "already a member" in existing.get_data(as_text=True)
    assert fresh(Invitation) == []


def test_an_expired_invitation_is_refused(as_role, app, fresh):
    path = _link_path(_invite(as_role("owner"), "late@example.com"))
    with clock.travel(clock.now() + timedelta(days=8)):
        invitee = app.test_client()
        page = invitee.get(path)
        assert page.status_code == 404 and "expired" in page.get_data(as_text=True)
        response = invitee.form(path, {"name": "Late", "password": "a long enough password",
                                       "password_confirm": "a long enough password"})
        assert response.status_code == 404
    assert fresh(User, email="late@example.com") == []


def test_revoking_an_invitation_kills_its_link(as_role, app, fresh):
    owner = as_role("owner")
    path = _link_path(_invite(owner, "nope@example.com"))
    invitation = fresh(Invitation, email="nope@example.com")[0]
    page = owner.get("/t/tenant-a/members").get_data(as_text=True)
    assert f"/t/tenant-a/invitations/{invitation.id}/revoke" in page and 'data-confirm="Revoke' in page
    response = owner.form(f"/t/tenant-a/invitations/{invitation.id}/revoke")
    assert response.status_code == 303
    after = owner.get("/t/tenant-a/members").get_data(as_text=True)
    assert "The invitation for nope@example.com was revoked." in after
    assert f'id="invitation-{invitation.id}"' not in after and "No pending invitations" in after
    gone = app.test_client().get(path)
    assert gone.status_code == 404 and "revoked" in gone.get_data(as_text=True)


def test_another_tenants_invitation_is_not_found(as_role, fresh):
    assert _invite(as_role("owner", "b"), "b-guest@example.com", slug="tenant-b").status_code == 200
    other = fresh(Invitation, email="b-guest@example.com")[0]
    owner = as_role("owner")
    assert owner.form(f"/t/tenant-a/invitations/{other.id}/revoke").status_code == 404
    assert owner.form("/t/tenant-a/invitations/ivt_garbage/revoke").status_code == 404
    assert fresh(Invitation, email="b-guest@example.com")[0].revoked_at is None


def test_change_a_role(as_role, tenant_world, fresh, audit_events):
    target = _membership(tenant_world, "a", "member")
    owner = as_role("owner")
    response = owner.form(f"/t/tenant-a/members/{target.id}/role", {"role": "admin"})
    assert response.status_code == 303
    assert fresh(Membership, id=target.id)[0].role == "admin"
    page = owner.get("/t/tenant-a/members").get_data(as_text=True)
    assert "member@a.example.com is now admin." in page  # the toast on the next page
    event = audit_events(tenant_world["a"]["tenant"].id, "member.role_changed")[-1]
    assert event.changes == {"role": ["member", "admin"]}


def test_bad_role_is_refused_and_nothing_changes(as_role, tenant_world, fresh):
    target = _membership(tenant_world, "a", "member")
    response = as_role("owner").form(f"/t/tenant-a/members/{target.id}/role", {"role": "superuser"})
    assert response.status_code == 422 and "Role is one of" in response.get_data(as_text=True)
    assert fresh(Membership, id=target.id)[0].role == "member"


def test_the_last_owner_keeps_the_role(as_role, tenant_world, fresh):
    me = _membership(tenant_world, "a", "owner")
    owner = as_role("owner")
    demote = owner.form(f"/t/tenant-a/members/{me.id}/role", {"role": "admin"})
    assert demote.status_code == 409 and "at least one owner" in demote.get_data(as_text=True)
    remove = owner.form(f"/t/tenant-a/members/{me.id}/remove")
    assert remove.status_code == 409 and "at least one owner" in remove.get_data(as_text=True)
    assert fresh(Membership, id=me.id)[0].role == "owner"


def test_an_admin_cannot_touch_the_owner(as_role, tenant_world, fresh):
    owner = _membership(tenant_world, "a", "owner")
    admin = as_role("admin")
    response = admin.form(f"/t/tenant-a/members/{owner.id}/remove")
    assert response.status_code == 403 and "Only an owner" in response.get_data(as_text=True)
    assert fresh(Membership, id=owner.id)


def test_remove_a_member(as_role, tenant_world, fresh, app):
    target = _membership(tenant_world, "a", "viewer")
    viewer_client = as_role("viewer")
    response = as_role("admin").form(f"/t/tenant-a/members/{target.id}/remove")
    assert response.status_code == 303
    assert fresh(Membership, id=target.id) == []
    assert viewer_client.get("/t/tenant-a/").status_code == 404


def test_removing_yourself_is_leaving(as_role, tenant_world, fresh):
    me = _membership(tenant_world, "a", "admin")
    client = as_role("admin")
    response = client.form(f"/t/tenant-a/members/{me.id}/remove")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert fresh(Membership, id=me.id) == []


def test_another_tenants_member_is_not_found(as_role, tenant_world, fresh):
    other = _membership(tenant_world, "b", "member")
    owner = as_role("owner")
    assert owner.form(f"/t/tenant-a/members/{other.id}/role", {"role": "viewer"}).status_code == 404
    assert owner.form(f"/t/tenant-a/members/{other.id}/remove").status_code == 404
    assert owner.form("/t/tenant-a/members/mem_nonsense/remove").status_code == 404
    assert fresh(Membership, id=other.id)[0].role == "member"
