"""Team: invitations (single use, 7 days), accepting them, role rules, and plan seat limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app import clock
from app.audit.models import AuditEvent
from app.auth import service as auth_service
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.extensions import db
from app.security import Actor
from app.tenancy import members, queries
from app.tenancy.models import Invitation

PASSWORD = "a very good password"


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


def actions(tenant_id: str) -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant_id)
                                   .order_by(AuditEvent.seq)))


def team(make, plan: str = "pro"):
    """A tenant with an owner and an admin (both real members) and their actors."""
    tenant = make.tenant(plan=plan)
    owner = make.member(tenant, "owner", make.user())
    admin = make.member(tenant, "admin", make.user())
    return tenant, make.actor_for(tenant, "owner", owner.user), make.actor_for(tenant, "admin", admin.user)


class TestInvite:
    def test_invite_then_accept_with_a_new_account(self, make):
        tenant, owner, _ = team(make)
        now = clock.now()
        with clock.travel(now):
            invitation, link = members.invite(owner, tenant.id, "  New.Person@Example.com ", "member")
        assert invitation.email == "new.person@example.com"
        assert link.startswith("http") and "/invitations/" in link
        token = token_of(link)
        assert token not in repr(invitation.token_hash)
        assert invitation.expires_at == now + timedelta(days=7)

        anonymous = Actor(type="system", id=None, display="anonymous", ip="198.51.100.7")
        membership = members.accept(anonymous, token, None, name="New Person", password=PASSWORD)
        assert membership.role == "member"
        user = auth_service.find_user_by_email("new.person@example.com")
        assert membership.user_id == user.id and user.name == "New Person"
        assert auth_service.authenticate(anonymous, user.email, PASSWORD, staff=False).id == user.id
        assert actions(tenant.id)[-2:] == ["member.invited", "member.added"]
        added = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "member.added",
                                                           AuditEvent.tenant_id == tenant.id)
                                  .order_by(AuditEvent.seq.desc()))
        assert (added.actor_type, added.actor_id, added.ip) == ("user", user.id, "198.51.100.7")
        assert queries.pending_invitations(tenant.id) == []

    def test_links_are_single_use(self, make):
        tenant, owner, _ = team(make)
        _, link = members.invite(owner, tenant.id, "once@example.com", "viewer")
        members.accept(Actor.system("t"), token_of(link), None, name="Once", password=PASSWORD)
        with pytest.raises(NotFound, match="accepted"):
            members.accept(Actor.system("t"), token_of(link), None, name="Twice", password=PASSWORD)
        with pytest.raises(NotFound, match="not valid"):
            members.find_invitation("made-up-token")

    def test_links_expire_after_7_days(self, make):
        tenant, owner, _ = team(make)
        start = clock.now()
        with clock.travel(start):
            _, link = members.invite(owner, tenant.id, "late@example.com", "member")
        with clock.travel(start + timedelta(days=7) - timedelta(seconds=1)):
            assert members.find_invitation(token_of(link))
        with clock.travel(start + timedelta(days=7)):
            with pytest.raises(NotFound, match="expired"):
                members.accept(Actor.system("t"), token_of(link), None, name="Late", password=PASSWORD)
            assert queries.pending_invitations(tenant.id) == []
        assert auth_service.find_user_by_email("late@example.com") is None

    def test_a_new_invitation_replaces_the_outstanding_one(self, make):
        tenant, owner, _ = team(make)
        _, first = members.invite(owner, tenant.id, "twice@example.com", "member")
        _, second = members.invite(owner, tenant.id, "twice@example.com", "admin")
        with pytest.raises(NotFound, match="revoked"):
            members.find_invitation(token_of(first))
        assert members.find_invitation(token_of(second)).role == "admin"

    def test_revoked_invitation_no_longer_works(self, make):
        tenant, owner, _ = team(make)
        invitation, link = members.invite(owner, tenant.id, "gone@example.com", "member")
        members.revoke_invitation(owner, tenant.id, invitation.id)
        with pytest.raises(NotFound, match="revoked"):
            members.find_invitation(token_of(link))
        with pytest.raises(Conflict):
            members.revoke_invitation(owner, tenant.id, invitation.id)

    def test_accept_as_the_signed_in_user_with_the_same_email(self, make):
        tenant, owner, _ = team(make)
        user = make.user("existing@example.com")
        _, link = members.invite(owner, tenant.id, "existing@example.com", "viewer")
        with pytest.raises(Conflict, match="sign in first"):
            members.accept(Actor.system("t"), token_of(link), None, name="X", password=PASSWORD)
        db.session.rollback()
        stranger = make.user("stranger@example.com")
        with pytest.raises(Forbidden, match=r"existing@example\.com"):
            members.accept(Actor.system("t"), token_of(link), stranger)
        db.session.rollback()
        membership = members.accept(Actor(type="user", id=user.id, display=user.email), token_of(link), user)
        assert (membership.user_id, membership.role) == (user.id, "viewer")

    def test_bad_password_on_accept_keeps_the_invitation_pending(self, make):
        tenant, owner, _ = team(make)
        _, link = members.invite(owner, tenant.id, "weak@example.com", "member")
        with pytest.raises(Invalid) as exc:
            members.accept(Actor.system("t"), token_of(link), None, name="Weak", password="short")
        assert "password" in exc.value.errors
        db.session.rollback()
        assert members.find_invitation(token_of(link)).status(clock.now()) == "pending"
        assert auth_service.find_user_by_email("weak@example.com") is None

    def test_existing_member_and_bad_input(self, make):
        tenant, owner, admin = team(make)
        with pytest.raises(Conflict):
            members.invite(owner, tenant.id, admin.display, "member")
        with pytest.raises(Invalid) as exc:
            members.invite(owner, tenant.id, "not-an-email", "member")
        assert "email" in exc.value.errors
        with pytest.raises(Invalid) as exc:
            members.invite(owner, tenant.id, "ok@example.com", "superuser")
        assert "role" in exc.value.errors
        db.session.rollback()
        assert db.session.scalars(select(Invitation)).all() == []


class TestRoles:
    def test_admin_cannot_grant_owner(self, make):
        tenant, _, admin = team(make)
        with pytest.raises(Forbidden):
            members.invite(admin, tenant.id, "boss@example.com", "owner")
        invitation, _ = members.invite(admin, tenant.id, "helper@example.com", "admin")
        assert invitation.role == "admin"
        viewer = make.member(tenant, "viewer")
        with pytest.raises(Forbidden):
            members.change_role(admin, tenant.id, viewer.id, "owner")

    def test_admin_cannot_touch_owners(self, make):
        tenant, _, admin = team(make)
        owner_membership = queries.get_membership(tenant.id, next(m.id for m in queries.members(tenant.id)
                                                                   if m.role == "owner"))
        with pytest.raises(Forbidden):
            members.change_role(admin, tenant.id, owner_membership.id, "member")
        with pytest.raises(Forbidden):
            members.remove(admin, tenant.id, owner_membership.id)
        assert queries.get_membership(tenant.id, owner_membership.id).role == "owner"

    def test_member_cannot_promote(self, make):
        tenant, _, _ = team(make)
        member = make.member(tenant, "member")
        viewer = make.member(tenant, "viewer")
        actor = make.actor_for(tenant, "member", member.user)
        with pytest.raises(Forbidden):
            members.change_role(actor, tenant.id, viewer.id, "admin")

    def test_last_owner_cannot_be_demoted_or_removed(self, make):
        tenant, owner, _ = team(make)
        owner_membership = next(m for m in queries.members(tenant.id) if m.role == "owner")
        with pytest.raises(Conflict, match="at least one owner"):
            members.change_role(owner, tenant.id, owner_membership.id, "admin")
        with pytest.raises(Conflict, match="at least one owner"):
            members.remove(owner, tenant.id, owner_membership.id)  # leaving, as the last owner
        second = make.member(tenant, "owner")
        members.change_role(owner, tenant.id, owner_membership.id, "admin")
        assert queries.get_membership(tenant.id, owner_membership.id).role == "admin"
        assert queries.get_membership(tenant.id, second.id).role == "owner"

    def test_role_change_and_removal_are_audited_and_published(self, make):
        tenant, owner, _ = team(make)
        member = make.member(tenant, "member")
        members.change_role(owner, tenant.id, member.id, "admin")
        members.remove(owner, tenant.id, member.id)
        assert actions(tenant.id)[-2:] == ["member.role_changed", "member.removed"]
        with pytest.raises(NotFound):
            queries.get_membership(tenant.id, member.id)

    def test_anyone_can_leave(self, make):
        tenant, _, _ = team(make)
        viewer = make.member(tenant, "viewer")
        members.remove(make.actor_for(tenant, "viewer", viewer.user), tenant.id, viewer.id)
        assert viewer.user_id not in {m.user_id for m in queries.members(tenant.id)}

    def test_another_tenants_membership_is_not_found(self, make):
        tenant, owner, _ = team(make)
        other, _, _ = team(make)
        stranger = make.member(other, "member")
        with pytest.raises(NotFound):
            members.change_role(owner, tenant.id, stranger.id, "viewer")
        with pytest.raises(NotFound):
            members.remove(owner, tenant.id, stranger.id)


class TestSeats:
    def test_free_plan_allows_3_members_counting_pending_invitations(self, make):
        tenant, owner, _ = team(make, plan="free")  # 2 members
        members.invite(owner, tenant.id, "third@example.com", "member")  # 3rd seat (pending)
        with pytest.raises(Conflict, match="allows 3 members"):
            members.invite(owner, tenant.id, "fourth@example.com", "member")
        db.session.rollback()
        assert len(queries.pending_invitations(tenant.id)) == 1

    def test_expired_invitations_free_their_seat(self, make):
        tenant, owner, _ = team(make, plan="free")
        start = clock.now()
        with clock.travel(start):
            members.invite(owner, tenant.id, "third@example.com", "member")
        with clock.travel(start + timedelta(days=8)):
            invitation, _ = members.invite(owner, tenant.id, "fourth@example.com", "member")
            assert invitation.email == "fourth@example.com"

    def test_reinviting_the_same_email_does_not_need_another_seat(self, make):
        tenant, owner, _ = team(make, plan="free")
        members.invite(owner, tenant.id, "third@example.com", "member")
        invitation, _ = members.invite(owner, tenant.id, "third@example.com", "viewer")
        assert invitation.role == "viewer"
