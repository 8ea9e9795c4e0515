"""API routes: the caller's tenant, its members, and invitations."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint

from app.api.idempotency import idempotent
from app.api.schemas import CursorArgs, list_body, list_schema
from app.auth import keycache
from app.security import api_scope, current_actor
from app.tenancy import members as members_service
from app.tenancy import queries
from app.tenancy.schemas import InvitationSchema, InviteArgs, MemberSchema, TenantSchema

blp = Blueprint("tenancy_api", __name__, url_prefix="/api/v1", description="Your tenant and its team.")
MemberList = list_schema(MemberSchema, "MemberList")


@blp.route("/tenant", methods=["GET"])
@api_scope("tenant:read")
@blp.response(200, TenantSchema)
def get_tenant():
    """The tenant that owns the API key."""
    return keycache.cache.tenant(g.actor.tenant_id)  # fresh: dropped whenever the tenant changes


@blp.route("/members", methods=["GET"])
@api_scope("members:read")
@blp.arguments(CursorArgs, location="query", as_kwargs=True)
@blp.response(200, MemberList)
def list_members(limit: int, starting_after: str | None = None):
    """Team members, newest first."""
    return list_body(queries.members_slice(g.actor.tenant_id, limit, starting_after))


@blp.route("/members", methods=["POST"])
@api_scope("members:write")
@idempotent
@blp.arguments(InviteArgs)
@blp.response(201, InvitationSchema)
def invite_member(data: dict):
    """Invite someone by email. The answer carries the single-use accept link (valid 7 days)."""
    invitation, link = members_service.invite(current_actor(), g.actor.tenant_id, data["email"], data["role"])
    return {"id": invitation.id, "email": invitation.email, "role": invitation.role, "status": "pending",
            "expires_at": invitation.expires_at, "accept_url": link}
