"""Tenant pages: the tenant's home (plan, status, your role) and its team (members and invitations)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request, url_for

from app.errors import Invalid, ServiceError
from app.security import PERMISSIONS, ROLE_PERMISSIONS, ROLES, current_actor, tenant_permission
from app.tenancy import members as members_service
from app.tenancy import queries
from app.tenancy.models import Tenant
from app.web import is_partial_request, redirect_to, render, toast

bp = Blueprint("tenancy_portal", __name__, url_prefix="/t/<slug>")

ROLE_SUMMARIES = {
    "owner": "Everything, including the plan and payment details.",
    "admin": "Everything except changing the plan and payment details.",
    "member": "Read the tenant's data, create API keys and webhooks, publish events and report usage.",
    "viewer": "Read-only access to the tenant's data (not billing or the audit trail).",
}


def _my_rank() -> int:
    """Your position in ROLES (0 = owner): you may manage roles at or below it."""
    return ROLES.index(g.membership.role)


def _grantable_roles() -> list[str]:
    return list(ROLES[_my_rank():])


def _error_for(exc: ServiceError) -> dict[str, str]:
    """A refused use case as form errors; htmx gets a toast too, since it does not swap a 4xx."""
    if is_partial_request() and not isinstance(exc, Invalid):
        toast(exc.detail, "error")
    if isinstance(exc, Invalid):
        return exc.errors or {"_": exc.detail}
    return {**exc.errors, "_": exc.detail}


def _home(tenant: Tenant, status: int = 200, page_error: str = "") -> Any:
    role = g.membership.role
    allowed = [(name, text) for name, text in PERMISSIONS.items() if name in ROLE_PERMISSIONS[role]]
    return render("portal/tenancy/home.html", status=status, tenant=tenant, plan=tenant.plan, role=role,
                  role_summary=ROLE_SUMMARIES.get(role, ""), allowed=allowed, page_error=page_error)


def _members_page(tenant: Tenant, partial: str | None = None, status: int = 200, **extra: Any) -> Any:
    context = {
        "tenant": tenant,
        "members": queries.members(tenant.id),
        "invitations": queries.pending_invitations(tenant.id),
        "can_write": g.actor.can("members:write"),
        "me": g.membership,
        "my_rank": _my_rank(),
        "roles": ROLES,
        "grantable": _grantable_roles(),
        "errors": {},
        "form": {"email": "", "role": "member"},
        "invite_link": None,
        "page_error": "",
    }
    return render("portal/tenancy/members.html", partial, status=status, **(context | extra))


@bp.route("/")
@tenant_permission("tenant:read")
def home(tenant: Tenant):
    """The tenant at a glance: plan, limits, status, and what your role allows."""
    return _home(tenant)


@bp.route("/leave", methods=["POST"])
@tenant_permission("tenant:read")
def leave(tenant: Tenant):
    """Leave the tenant: removes only your own membership."""
    try:
        members_service.remove(current_actor(), tenant.id, g.membership.id)
    except ServiceError as exc:
        return _home(tenant, status=exc.status, page_error=exc.detail)
    toast(f"You left {tenant.name}.")
    return redirect_to("/")


@bp.route("/members")
@tenant_permission("members:read")
def members(tenant: Tenant):
    """Team members and pending invitations."""
    return _members_page(tenant)


@bp.route("/members/invite", methods=["POST"])
@tenant_permission("members:write")
def invite(tenant: Tenant):
    """Invite someone by email; the single-use link is shown once."""
    form = {"email": request.form.get("email", "").strip(), "role": request.form.get("role", "member")}
    try:
        invitation, link = members_service.invite(current_actor(), tenant.id, form["email"], form["role"])
    except ServiceError as exc:
        return _members_page(tenant, "portal/tenancy/_invite.html", status=exc.status, errors=_error_for(exc),
                             form=form)
    toast(f"Invitation for {invitation.email} created.")
    return _members_page(tenant, "portal/tenancy/_invite_done.html", invite_link=link, invited=invitation)


@bp.route("/members/<membership_id>/role", methods=["POST"])
@tenant_permission("members:write")
def member_role(tenant: Tenant, membership_id: str):
    """Change a member's role."""
    member = queries.get_membership(tenant.id, membership_id)
    try:
        members_service.change_role(current_actor(), tenant.id, member.id, request.form.get("role", ""))
    except ServiceError as exc:
        return _members_page(tenant, status=exc.status, page_error=_page_error(exc))
    toast(f"{member.user.email} is now {member.role}.")
    return redirect_to(url_for(".members", slug=tenant.slug))


@bp.route("/members/<membership_id>/remove", methods=["POST"])
@tenant_permission("members:write")
def member_remove(tenant: Tenant, membership_id: str):
    """Remove a member; removing yourself is leaving."""
    member = queries.get_membership(tenant.id, membership_id)
    email, leaving = member.user.email, member.id == g.membership.id
    try:
        members_service.remove(current_actor(), tenant.id, member.id)
    except ServiceError as exc:
        return _members_page(tenant, status=exc.status, page_error=_page_error(exc))
    if leaving:
        toast(f"You left {tenant.name}.")
        return redirect_to("/")
    toast(f"{email} was removed.")
    return redirect_to(url_for(".members", slug=tenant.slug))


@bp.route("/invitations/<invitation_id>/revoke", methods=["POST"])
@tenant_permission("members:write")
def invitation_revoke(tenant: Tenant, invitation_id: str):
    """Revoke a pending invitation: its link stops working."""
    invitation = queries.get_invitation(tenant.id, invitation_id)
    try:
        members_service.revoke_invitation(current_actor(), tenant.id, invitation.id)
    except ServiceError as exc:
        return _members_page(tenant, status=exc.status, page_error=_page_error(exc))
    toast(f"The invitation for {invitation.email} was revoked.")
    return redirect_to(url_for(".members", slug=tenant.slug))


def _page_error(exc: ServiceError) -> str:
    if isinstance(exc, Invalid) and exc.errors:
        return " ".join(exc.errors.values())
    return exc.detail
