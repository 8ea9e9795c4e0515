"""Read side of tenancy: lookups, the staff tenant list, members and invitations."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import Select, or_, select

from app import clock
from app.db import Page, Slice, keyset, like_escape, paginate
from app.errors import NotFound
from app.extensions import db
from app.tenancy.models import Invitation, Membership, Tenant, TenantTag

TENANT_SORTS = {
    "name": Tenant.name.asc(),
    "-name": Tenant.name.desc(),
    "created": Tenant.created_at.asc(),
    "-created": Tenant.created_at.desc(),
    "slug": Tenant.slug.asc(),
    "-slug": Tenant.slug.desc(),
    "status": Tenant.status.asc(),
    "-status": Tenant.status.desc(),
}


def get_tenant(tenant_id: str) -> Tenant:
    """A tenant by id, or NotFound."""
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    return tenant


def get_by_slug(slug: str) -> Tenant | None:
    return db.session.scalar(select(Tenant).where(Tenant.slug == slug))


def tenant_filter(value: str, errors: dict[str, str], field: str = "tenant") -> str | None:
    """A staff list's tenant filter (a slug or an id) as a tenant id; None when blank, and an error
    under `field` when no tenant matches."""
    if not value.strip():
        return None
    found = find_by_id_or_slug(value)
    if found is None:
        errors[field] = f"No tenant has the slug or id {value.strip()!r}."
        return None
    return found.id


def find_by_id_or_slug(value: str) -> Tenant | None:
    """The tenant a person named by its id (ten_…) or its slug, as staff forms and filters accept."""
    value = value.strip()
    if not value:
        return None
    return (db.session.get(Tenant, value) if value.startswith("ten_") else None) or get_by_slug(value.lower())


def membership_for_slug(user_id: str, slug: str) -> tuple[Tenant, Membership] | None:
    """The tenant named by slug and the user's membership in it, or None (not a member: 404)."""
    row = db.session.execute(
        select(Tenant, Membership)
        .join(Membership, Membership.tenant_id == Tenant.id)
        .where(Tenant.slug == slug, Membership.user_id == user_id)
    ).first()
    return (row[0], row[1]) if row else None


def memberships_of_user(user_id: str) -> list[Membership]:
    """Every tenant a user belongs to, by tenant name."""
    return list(
        db.session.scalars(
            select(Membership).join(Tenant, Membership.tenant_id == Tenant.id)
            .where(Membership.user_id == user_id).order_by(Tenant.name)
        )
    )


def tenants_query(q: str = "", status: str = "", plan_id: str = "", tag: str = "") -> Select:
    """The tenants the staff list's search and filters select (no order): for the list and for exports."""
    stmt = select(Tenant)
    if q:
        like = f"%{like_escape(q.strip().lower())}%"
        stmt = stmt.where(or_(Tenant.slug.like(like, escape="\\"), Tenant.name.ilike(like, escape="\\"),
                              Tenant.billing_email.like(like, escape="\\"), Tenant.id == q.strip()))
    if status:
        stmt = stmt.where(Tenant.status == status)
    if plan_id:
        stmt = stmt.where(Tenant.plan_id == plan_id)
    if tag:
        stmt = stmt.where(Tenant.id.in_(select(TenantTag.tenant_id).where(TenantTag.tag == tag.strip().lower())))
    return stmt


def list_tenants(q: str = "", status: str = "", plan_id: str = "", tag: str = "", sort: str = "name",
                 page: int = 1, per_page: int = 25) -> Page:
    """The staff tenant list: search name/slug/billing email, filter by status, plan and tag, sort, page."""
    stmt = tenants_query(q, status, plan_id, tag)
    stmt = stmt.order_by(TENANT_SORTS.get(sort, TENANT_SORTS["name"]), Tenant.id)
    return paginate(db.session, stmt, page, per_page)


def all_tags() -> list[str]:
    return list(db.session.scalars(select(TenantTag.tag).distinct().order_by(TenantTag.tag)))


def members(tenant_id: str) -> list[Membership]:
    """A tenant's members, owners first then by email."""
    from app.auth.models import User

    rows = db.session.scalars(
        select(Membership).join(User, Membership.user_id == User.id)
        .where(Membership.tenant_id == tenant_id).order_by(User.email)
    ).all()
    from app.security import ROLES

    return sorted(rows, key=lambda m: ROLES.index(m.role))


def members_slice(tenant_id: str, limit: int, starting_after: str | None) -> Slice:
    """Members for the API, newest first with a cursor."""
    return keyset(db.session, select(Membership).where(Membership.tenant_id == tenant_id), Membership.id,
                  limit, starting_after)


def get_membership(tenant_id: str, membership_id: str) -> Membership:
    member = db.session.scalar(
        select(Membership).where(Membership.id == membership_id, Membership.tenant_id == tenant_id)
    )
    if member is None:
        raise NotFound("No such member.")
    return member


def pending_invitations(tenant_id: str) -> list[Invitation]:
    """Invitations not yet accepted, revoked or expired, newest first."""
    return list(
        db.session.scalars(
            select(Invitation).where(
                Invitation.tenant_id == tenant_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > clock.now(),
            ).order_by(Invitation.id.desc())
        )
    )


def get_invitation(tenant_id: str, invitation_id: str) -> Invitation:
    invitation = db.session.scalar(
        select(Invitation).where(Invitation.id == invitation_id, Invitation.tenant_id == tenant_id)
    )
    if invitation is None:
        raise NotFound("No such invitation.")
    return invitation


def status_counts() -> dict[str, int]:
    """How many tenants are in each status (statuses with none are left out)."""
    from sqlalchemy import func

    return dict(db.session.execute(select(Tenant.status, func.count()).group_by(Tenant.status)).all())


def tenants_by_id(tenant_ids: Iterable[str | None]) -> dict[str, Tenant]:
    """The tenants with these ids, keyed by id (unknown ids are left out); for labelling lists."""
    wanted = {tenant_id for tenant_id in tenant_ids if tenant_id}
    if not wanted:
        return {}
    return {tenant.id: tenant for tenant in db.session.scalars(select(Tenant).where(Tenant.id.in_(wanted)))}


def tenant_id_batches(size: int = 500) -> Iterator[list[str]]:
    """Every tenant id, in id order, `size` at a time (for jobs that visit each tenant's counters)."""
    after = ""
    while True:
        ids = list(db.session.scalars(select(Tenant.id).where(Tenant.id > after).order_by(Tenant.id).limit(size)))
        if not ids:
            return
        yield ids
        after = ids[-1]
