"""Staff impersonation: a staff member views a tenant's pages as one of its members ("view as"), read-only
unless they chose to allow changes, under a banner on every page, audited when it starts and when it ends.

The staff member stays signed in as themselves; the session remembers whom they view as. On that tenant's
pages the access check (app.security.tenant_permission) uses the member's role for what is shown and
allowed, the actor is the staff member ("staff@… as member@…", so the audit trail names who really acted),
and while read-only any request that is not GET or HEAD is refused with 403 (and audited)."""

from __future__ import annotations

from typing import Any

from flask import session
from sqlalchemy import select

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.errors import Invalid
from app.extensions import db
from app.security import Actor

SESSION_KEY = "impersonation"


def start(actor: Actor, tenant_id: str, user_id: str, allow_changes: bool) -> dict[str, Any]:
    """Begin viewing `tenant_id` as the member `user_id`; ends any impersonation already running."""
    from app.auth.models import User
    from app.tenancy.models import Membership, Tenant

    row = db.session.execute(select(Tenant, Membership, User).join(Membership, Membership.tenant_id == Tenant.id)
                             .join(User, User.id == Membership.user_id)
                             .where(Tenant.id == tenant_id, User.id == user_id)).first()
    if row is None:
        raise Invalid("Choose a member of this tenant.", errors={"user_id": "Not a member of this tenant."})
    tenant, membership, user = row
    if session.get(SESSION_KEY):
        end(actor)
    state = {"tenant_id": tenant.id, "slug": tenant.slug, "tenant_name": tenant.name, "user_id": user.id,
             "email": user.email, "role": membership.role, "read_only": not allow_changes,
             "started_at": clock.now().isoformat()}
    audit.record(actor, "impersonation.started", tenant_id=tenant.id,
                 targets=[Target("user", user.id, user.email), Target("tenant", tenant.id, tenant.name)],
                 metadata={"read_only": not allow_changes, "role": membership.role}, severity="warning")
    db.session.commit()
    session[SESSION_KEY] = state
    return state


def end(actor: Actor) -> dict[str, Any] | None:
    """Stop viewing as a member (audited with how long it lasted)."""
    state = session.pop(SESSION_KEY, None)
    if state:
        from datetime import datetime

        seconds = int((clock.now() - datetime.fromisoformat(state["started_at"])).total_seconds())
        audit.record(actor, "impersonation.ended", tenant_id=state["tenant_id"],
                     targets=[Target("user", state["user_id"], state["email"])],
                     metadata={"seconds": seconds, "read_only": state["read_only"]})
        db.session.commit()
    return state


def current() -> dict[str, Any] | None:
    return session.get(SESSION_KEY)


def membership_for(slug: str) -> tuple[Any, Any, dict[str, Any]] | None:
    """(tenant, membership, state) when the signed-in staff member views `slug` as one of its members."""
    state = current()
    if not state or state.get("slug") != slug:
        return None
    from app.tenancy.models import Membership, Tenant

    row = db.session.execute(select(Tenant, Membership).join(Membership, Membership.tenant_id == Tenant.id)
                             .where(Tenant.slug == slug, Membership.user_id == state["user_id"])).first()
    return (row[0], row[1], state) if row else None
