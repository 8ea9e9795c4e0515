"""Read side of the staff API: tenants and users, newest first with a cursor."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from app.auth.models import User
from app.db import Slice, keyset, like_escape
from app.extensions import db
from app.tenancy.models import Membership, Tenant
from app.tenancy.queries import tenants_query


def tenants_slice(limit: int, starting_after: str | None, q: str = "", status: str = "", plan_id: str = "",
                  tag: str = "") -> Slice:
    """Tenants matching the staff list's filters (name/slug/billing email/id, status, plan, tag)."""
    stmt = tenants_query(q.strip(), status, plan_id, tag)
    return keyset(db.session, stmt, Tenant.id, limit, starting_after)


def users_slice(limit: int, starting_after: str | None, q: str = "", email: str = "") -> Slice:
    """Users by part of the email or name, or by exact email (case-insensitive)."""
    stmt = select(User)
    if q.strip():
        like = f"%{like_escape(q.strip().lower())}%"
        stmt = stmt.where(or_(User.email.like(like, escape="\\"), func.lower(User.name).like(like, escape="\\")))
    if email.strip():
        stmt = stmt.where(User.email == email.strip().lower())
    return keyset(db.session, stmt, User.id, limit, starting_after)


def get_user(user_id: str) -> User | None:
    return db.session.get(User, user_id)


def memberships_of(user_id: str) -> list[Membership]:
    return list(db.session.scalars(select(Membership).where(Membership.user_id == user_id)
                                   .order_by(Membership.id.desc())))
