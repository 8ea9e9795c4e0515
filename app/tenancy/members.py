"""Team use cases: invite, accept, change role, remove. Owners stay: the last one can't leave or be demoted."""

from __future__ import annotations

import hashlib
import logging
import secrets

from flask import current_app, has_request_context, url_for
from sqlalchemy import func, select

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.auth import service as auth_service
from app.auth.models import User
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.events import service as events
from app.extensions import db
from app.security import ROLES, Actor
from app.tenancy import queries
from app.tenancy.models import Invitation, Membership, Tenant

log = logging.getLogger(__name__)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def accept_link(token: str) -> str:
    """The absolute accept URL for an invitation token."""
    path = url_for("auth.accept_invitation", token=token) if has_request_context() else f"/invitations/{token}"
    return current_app.config["BASE_URL"].rstrip("/") + path


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise Invalid(errors={"role": f"Role is one of {', '.join(ROLES)}."})
    return role


def _actor_rank(actor: Actor, tenant_id: str) -> int:
    """0 for owners, staff and the system; an API key acts as an admin; users by their role."""
    if actor.type in {"staff", "system"}:
        return 0
    if actor.type == "api_key":
        return ROLES.index("admin")
    membership = db.session.scalar(
        select(Membership).where(Membership.tenant_id == tenant_id, Membership.user_id == actor.id)
    )
    return ROLES.index(membership.role) if membership else len(ROLES)


def _require_rank(actor: Actor, tenant_id: str, role: str) -> None:
    if ROLES.index(role) < _actor_rank(actor, tenant_id):
        raise Forbidden(f"Only an owner can grant or change the {role} role.")


def _owner_count(tenant_id: str) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.tenant_id == tenant_id, Membership.role == "owner")
    ) or 0


def check_seat(tenant: Tenant, email: str) -> None:
    """Members plus pending invitations must stay within the plan; re-inviting `email` reuses its seat."""
    limit = tenant.plan.max_members if tenant.plan else None
    if limit is None:
        return
    used = db.session.scalar(select(func.count()).select_from(Membership).where(Membership.tenant_id == tenant.id))
    used += len([i for i in queries.pending_invitations(tenant.id) if i.email != email])
    if used >= limit:
        raise Conflict(f"The {tenant.plan.name} plan allows {limit} members; remove someone or upgrade.")


def add_membership(actor: Actor, tenant: Tenant, user: User, role: str) -> Membership:
    """Within the caller's transaction: make `user` a member with `role` (audited, published)."""
    membership = Membership(tenant_id=tenant.id, user_id=user.id, role=role)
    db.session.add(membership)
    db.session.flush()
    audit.record(actor, "member.added", tenant_id=tenant.id,
                 targets=[Target("user", user.id, user.email), Target("membership", membership.id)],
                 changes={"role": [None, role]})
    events.publish(tenant.id, "member.added", {"id": membership.id, "user_id": user.id, "email": user.email,
                                               "role": role})
    return membership


def _new_invitation(actor: Actor, tenant: Tenant, email: str, role: str) -> tuple[Invitation, str]:
    for old in db.session.scalars(
        select(Invitation).where(Invitation.tenant_id == tenant.id, Invitation.email == email,
                                 Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
    ):
        old.revoked_at = clock.now()  # a new invitation replaces an outstanding one
    token = secrets.token_urlsafe(32)
    invitation = Invitation(tenant_id=tenant.id, email=email, role=role, token_hash=_hash(token),
                            invited_by=actor.display[:200],
                            expires_at=clock.now() + current_app.config["INVITATION_TTL"])
    db.session.add(invitation)
    db.session.flush()
    audit.record(actor, "member.invited", tenant_id=tenant.id,
                 targets=[Target("invitation", invitation.id, email)], changes={"role": [None, role]},
                 metadata={"email": email, "expires_at": invitation.expires_at})
    link = accept_link(token)
    log.info("invitation to %s for %s (%s): %s", tenant.slug, email, role, link)
    return invitation, token


def add_or_invite(actor: Actor, tenant: Tenant, email: str, role: str) -> str | None:
    """Within the caller's transaction: make an existing user a member, or invite a new one.
    Returns the accept link when an invitation was made."""
    email = auth_service.normalize_email(email)
    _check_role(role)
    user = auth_service.find_user_by_email(email)
    if user is not None:
        add_membership(actor, tenant, user, role)
        return None
    _invitation, token = _new_invitation(actor, tenant, email, role)
    return accept_link(token)


def invite(actor: Actor, tenant_id: str, email: str, role: str) -> tuple[Invitation, str]:
    """Invite someone by email; the single-use link expires in 7 days. Returns the invitation and link."""
    tenant = queries.get_tenant(tenant_id)
    email = auth_service.normalize_email(email)
    _check_role(role)
    _require_rank(actor, tenant.id, role)
    user = auth_service.find_user_by_email(email)
    if user is not None and db.session.scalar(
        select(Membership).where(Membership.tenant_id == tenant.id, Membership.user_id == user.id)
    ):
        raise Conflict(f"{email} is already a member.", errors={"email": "Already a member."})
    check_seat(tenant, email)
    invitation, token = _new_invitation(actor, tenant, email, role)
    db.session.commit()
    return invitation, accept_link(token)


def find_invitation(token: str) -> Invitation:
    """A pending invitation by its token, or NotFound with the reason it no longer works."""
    invitation = db.session.scalar(select(Invitation).where(Invitation.token_hash == _hash(token or "")))
    if invitation is None:
        raise NotFound("This invitation link is not valid.")
    status = invitation.status(clock.now())
    if status != "pending":
        raise NotFound(f"This invitation has been {status}. Ask for a new one.")
    return invitation


def accept(actor: Actor, token: str, user: User | None, name: str = "", password: str = "") -> Membership:
    """Accept an invitation as the signed-in user (same email) or by creating the account."""
    invitation = find_invitation(token)
    tenant = invitation.tenant
    if user is None:
        if auth_service.find_user_by_email(invitation.email) is not None:
            raise Conflict("An account with this email exists: sign in first, then open the link again.")
        user = auth_service.build_user(invitation.email, name, password)
        actor = Actor(type="user", id=user.id, display=user.email, ip=actor.ip, user_agent=actor.user_agent,
                      request_id=actor.request_id)
    elif user.email != invitation.email:
        raise Forbidden(f"This invitation is for {invitation.email}; you are signed in as {user.email}.")
    existing = db.session.scalar(
        select(Membership).where(Membership.tenant_id == tenant.id, Membership.user_id == user.id)
    )
    invitation.accepted_at = clock.now()
    if existing is not None:
        db.session.commit()
        return existing
    membership = add_membership(actor, tenant, user, invitation.role)
    db.session.commit()
    return membership


def revoke_invitation(actor: Actor, tenant_id: str, invitation_id: str) -> None:
    invitation = queries.get_invitation(tenant_id, invitation_id)
    if invitation.status(clock.now()) != "pending":
        raise Conflict("This invitation is no longer pending.")
    invitation.revoked_at = clock.now()
    audit.record(actor, "member.invitation_revoked", tenant_id=tenant_id,
                 targets=[Target("invitation", invitation.id, invitation.email)])
    db.session.commit()


def change_role(actor: Actor, tenant_id: str, membership_id: str, role: str) -> Membership:
    """Change a member's role; only owners touch owners, and the last owner stays an owner."""
    member = queries.get_membership(tenant_id, membership_id)
    _check_role(role)
    if member.role == role:
        return member
    _require_rank(actor, tenant_id, member.role)
    _require_rank(actor, tenant_id, role)
    if member.role == "owner" and _owner_count(tenant_id) == 1:
        raise Conflict("A tenant needs at least one owner: make someone else an owner first.")
    old, member.role = member.role, role
    audit.record(actor, "member.role_changed", tenant_id=tenant_id,
                 targets=[Target("user", member.user_id, member.user.email), Target("membership", member.id)],
                 changes={"role": [old, role]})
    events.publish(tenant_id, "member.updated", {"id": member.id, "user_id": member.user_id, "role": role})
    db.session.commit()
    return member


def remove(actor: Actor, tenant_id: str, membership_id: str) -> None:
    """Remove a member (or leave); the last owner can't."""
    member = queries.get_membership(tenant_id, membership_id)
    if member.user_id != actor.id:
        _require_rank(actor, tenant_id, member.role)
    if member.role == "owner" and _owner_count(tenant_id) == 1:
        raise Conflict("A tenant needs at least one owner: make someone else an owner first.")
    email = member.user.email
    audit.record(actor, "member.removed", tenant_id=tenant_id,
                 targets=[Target("user", member.user_id, email), Target("membership", member.id)],
                 changes={"role": [member.role, None]})
    events.publish(tenant_id, "member.removed", {"id": member.id, "user_id": member.user_id, "email": email})
    db.session.delete(member)
    db.session.commit()
